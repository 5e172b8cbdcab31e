"""Load HeartMuLa from the released folder layout, strictly.

Layout (as published, e.g. ``ckpt/``)::

    ckpt/HeartMuLa-oss-3B/config.json
    ckpt/HeartMuLa-oss-3B/model-0000N-of-0000M.safetensors + model.safetensors.index.json
                          (or a single model.safetensors)
    ckpt/tokenizer.json    ckpt/gen_config.json     (also accepted inside the model folder)

``load_mula`` takes either the model folder or the parent folder (then the
``HeartMuLa-oss-<version>`` subfolder is used). Every missing, unexpected or
mis-shaped tensor is an error naming the key and the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from safetensors import safe_open
from tokenizers import Tokenizer

from heartcodec_lab.codec.checkpoints import CheckpointError, check_state, load_strict, locate_checkpoint
from heartcodec_lab.codec.runtime import default_dtype, freeze, parse_dtype, resolve_device
from heartcodec_lab.codec.weights import file_sha256 as _sha256
from heartcodec_lab.mula.model import HeartMuLa, MulaConfig

MODEL_PREFIX = "HeartMuLa-oss-"


#: the one checkpoint error type (kept under this name for callers of the HeartMuLa API)
MulaLoadError = CheckpointError


@dataclass
class GenConfig:
    """``gen_config.json``: special text ids and the audio end id."""

    text_bos_id: int = 128000
    text_eos_id: int = 128001
    audio_eos_id: int = 8193
    empty_id: int = 0

    @classmethod
    def from_file(cls, path: str | Path) -> GenConfig:
        data = _read_json(Path(path))
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise MulaLoadError(f"{path}: unknown gen_config keys {sorted(unknown)} (expected {sorted(names)})")
        return cls(**{k: int(v) for k, v in data.items()})


@dataclass
class MulaBundle:
    """Everything generation and scoring need: the model, its tokenizer and its special ids."""

    model: HeartMuLa
    tokenizer: Tokenizer
    gen_config: GenConfig
    source: dict = field(default_factory=dict)

    @property
    def config(self) -> MulaConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    def describe(self) -> dict:
        """JSON-able identity (path and file hashes, or ``embedded-tiny``)."""
        return dict(self.source)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MulaLoadError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise MulaLoadError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def find_model_dir(path: str | Path, version: str | None = None) -> Path:
    """The folder holding ``config.json`` + weights, given it or its parent (a local folder or a Hub repo id)."""
    path = locate_checkpoint(path, "HeartMuLa checkpoint")
    if not path.exists():
        raise FileNotFoundError(f"{path}: HeartMuLa checkpoint folder not found")
    if (path / "config.json").is_file():
        return path
    if version is not None:
        candidate = path / f"{MODEL_PREFIX}{version}"
        if not candidate.is_dir():
            raise FileNotFoundError(f"{candidate}: not found (version {version!r})")
        return candidate
    found = sorted(p for p in path.glob(f"{MODEL_PREFIX}*") if (p / "config.json").is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise MulaLoadError(
            f"{path}: neither a HeartMuLa folder (config.json) nor a parent of {MODEL_PREFIX}<version>/"
        )
    raise MulaLoadError(f"{path}: several models {[p.name for p in found]}; pick one with version=...")


def _side_file(model_dir: Path, name: str) -> Path:
    for folder in (model_dir, model_dir.parent):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{name} not found in {model_dir} or {model_dir.parent}")


def weight_files(model_dir: Path) -> dict[str, Path]:
    """Map every tensor name to the safetensors file holding it (single file or shards + index)."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise MulaLoadError(f"{index}: no weight_map")
        out = {}
        for key, shard in weight_map.items():
            file = model_dir / shard
            if not file.is_file():
                raise FileNotFoundError(f"{index}: shard {shard} (for {key}) not found")
            out[key] = file
        return out
    single = model_dir / "model.safetensors"
    if single.is_file():
        with safe_open(str(single), framework="pt") as f:
            return {key: single for key in f.keys()}
    shards = sorted(model_dir.glob("model-*.safetensors"))
    hint = f" (found shards {[s.name for s in shards]} but no model.safetensors.index.json)" if shards else ""
    raise FileNotFoundError(f"{model_dir}: no model.safetensors or model.safetensors.index.json{hint}")


def load_state_dict_strict(model: HeartMuLa, files: dict[str, Path], dtype: torch.dtype) -> None:
    """Check names and shapes against ``model`` and assign the tensors (cast to ``dtype``)."""
    where = next(iter(files.values())).parent
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_state({k: expected.get(k, ()) for k in files}, expected, where)  # names first, before reading GBs
    state: dict[str, torch.Tensor] = {}
    by_file: dict[Path, list[str]] = {}
    for key, file in files.items():
        by_file.setdefault(file, []).append(key)
    for file, keys in by_file.items():
        with safe_open(str(file), framework="pt") as f:
            present = set(f.keys())
            for key in keys:
                if key not in present:
                    raise MulaLoadError(f"{file}: key {key} listed in the index but absent from the shard")
                tensor = f.get_tensor(key)
                state[key] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    load_strict(model, state, where, assign=True)


def load_mula_model(model_dir: Path, device: torch.device, dtype: torch.dtype) -> HeartMuLa:
    """Build on the meta device (no double allocation), assign the weights, rebuild RoPE tables."""
    config = MulaConfig.from_dict(_read_json(model_dir / "config.json"), source=str(model_dir / "config.json"))
    files = weight_files(model_dir)
    with torch.device("meta"):
        model = HeartMuLa(config)
    load_state_dict_strict(model, files, dtype)
    # RoPE tables are non-persistent buffers that meta construction skipped
    model.rope_init()
    return freeze(model.norms_to_float32().to(device))


def load_mula(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    version: str | None = None,
) -> MulaBundle:
    """Load HeartMuLa + tokenizer + gen_config.

    ``path=None`` builds the embedded tiny default (random weights, audio vocab
    8197 to match the embedded codec; noise, but every stage runs). ``dtype=None``
    picks bf16 on capable CUDA devices and float32 otherwise.
    """
    device = resolve_device(device)
    dtype = parse_dtype(dtype) or default_dtype(device)
    if path is None:
        from heartcodec_lab.mula.embedded import build_embedded_bundle

        return build_embedded_bundle(device=device, dtype=dtype)
    model_dir = find_model_dir(path, version)
    model = load_mula_model(model_dir, device, dtype)
    tokenizer_path = _side_file(model_dir, "tokenizer.json")
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
    except Exception as err:  # tokenizers raises plain Exception subclasses
        raise MulaLoadError(f"{tokenizer_path}: cannot read tokenizer ({err})") from err
    gen_config = GenConfig.from_file(_side_file(model_dir, "gen_config.json"))
    source = {
        "mula": "checkpoint",
        "path": str(model_dir.resolve()),
        "config_sha256": _sha256(model_dir / "config.json"),
        "weights": sorted({p.name for p in weight_files(model_dir).values()}),
    }
    return MulaBundle(model=model, tokenizer=tokenizer, gen_config=gen_config, source=source)
