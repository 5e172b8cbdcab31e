"""Load a ``HeartTranscriptor-oss`` folder strictly, or build the embedded tiny default."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from heartcodec_lab.codec.checkpoints import CheckpointError, locate_checkpoint
from heartcodec_lab.codec.runtime import parse_dtype
from heartcodec_lab.transcribe.embedded import EMBEDDED_SEED, build_embedded_transcriber
from heartcodec_lab.transcribe.model import FOLDER_NAME, HeartTranscriptor
from heartcodec_lab.transcribe.settings import TranscribeSettings

# what transformers' save_pretrained writes for a Whisper model + processor
_REQUIRED = {
    "config.json": "the model config",
    "generation_config.json": "Whisper's generation config (language/task ids)",
}
# the feature extractor: its own file (older transformers, the released folder) or inside processor_config.json
_FEATURES = ("preprocessor_config.json", "processor_config.json")
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
_TOKENIZER = (("tokenizer.json",), ("vocab.json", "merges.txt"))


#: the one checkpoint error type (kept under this name for callers of the transcriber API)
TranscriberLoadError = CheckpointError


def resolve_folder(path: str | Path) -> Path:
    """``path`` itself when it holds ``config.json``, else its ``HeartTranscriptor-oss`` sub-folder."""
    folder = locate_checkpoint(path, "transcriber checkpoint")  # a folder or a Hub repo id
    if not folder.is_dir():
        raise TranscriberLoadError(f"{folder}: transcriber folder not found")
    if not (folder / "config.json").is_file() and (folder / FOLDER_NAME / "config.json").is_file():
        folder = folder / FOLDER_NAME
    return folder


def check_folder(folder: Path) -> None:
    """Every file the released layout has, or one error listing what is missing."""
    missing = [f"{name} ({why})" for name, why in _REQUIRED.items() if not (folder / name).is_file()]
    if not any((folder / f).is_file() for f in _FEATURES):
        missing.append(" or ".join(_FEATURES) + " (the feature extractor settings)")
    if not any((folder / w).is_file() for w in _WEIGHTS):
        missing.append(" or ".join(_WEIGHTS) + " (the weights)")
    if not any(all((folder / f).is_file() for f in group) for group in _TOKENIZER):
        missing.append("tokenizer.json or vocab.json + merges.txt (the tokenizer)")
    if missing:
        raise TranscriberLoadError(f"{folder}: not a complete HeartTranscriptor folder; missing {', '.join(missing)}")
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    if model_type != "whisper":
        raise TranscriberLoadError(f"{folder}/config.json: model_type is {model_type!r}, expected 'whisper'")


def load_transcriber(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = None,
    settings: TranscribeSettings | dict | None = None,
) -> HeartTranscriptor:
    """A HeartTranscriptor from ``path`` (the folder or its parent), or the embedded tiny one for None.

    Loading is strict: every weight of the checkpoint must match the model exactly (no missing,
    unexpected or resized tensor), else a one-line error names the folder.
    """
    settings = settings if isinstance(settings, TranscribeSettings) else TranscribeSettings.from_dict(settings)
    dtype = parse_dtype(dtype) or torch.float32
    if path is None:
        model, processor = build_embedded_transcriber()
        source = {"kind": "embedded-tiny", "path": None, "seed": EMBEDDED_SEED}
    else:
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        folder = resolve_folder(path)
        check_folder(folder)
        model, info = WhisperForConditionalGeneration.from_pretrained(folder, dtype=dtype, output_loading_info=True)
        problems = {k: v for k, v in info.items() if k != "error_msgs" and v} | (
            {"error_msgs": info["error_msgs"]} if info.get("error_msgs") else {}
        )
        if problems:
            detail = "; ".join(f"{k}: {sorted(map(str, v))[:5]}" for k, v in problems.items())
            raise TranscriberLoadError(f"{folder}: weights do not match the Whisper config ({detail})")
        processor = WhisperProcessor.from_pretrained(folder)
        source = {"kind": "checkpoint", "path": str(folder.resolve())}
    model = model.to(device=device, dtype=dtype).requires_grad_(False).eval()
    return HeartTranscriptor(model, processor, settings, source=source, device=device)
