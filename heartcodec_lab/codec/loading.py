"""Strict loading of HeartCodec checkpoints in every released layout.

A checkpoint folder holds ``config.json`` and either ``model.safetensors`` or
shards ``model-XXXXX-of-YYYYY.safetensors`` listed in
``model.safetensors.index.json``. Keys sit at the root (``flow_matching.*``,
``scalar_model.*``). Accepted variations:

* weight norm spelled ``weight_g`` / ``weight_v`` (old torch) or
  ``parametrizations.weight.original0`` / ``original1``;
* the RVQ ``initted`` flags stored as float32 ``[1]`` (the published files) or
  bool ``[]`` (vector-quantize-pytorch >= 1.27).

Everything else must match exactly: a missing, unexpected or mis-shaped tensor
raises :class:`CheckpointError` naming the key and the file. Tensors are copied
one by one from memory-mapped safetensors into a model built without random
init, so peak memory stays close to one copy of the weights.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from .checkpoints import RANDOM_CODEC, CheckpointError, embedded_codec_name, locate_checkpoint
from .config import HeartCodecConfig
from .model import HeartCodec
from .runtime import freeze, parse_dtype, resolve_device
from .weights import adapt_initted, canonical_key, is_initted_flag, skip_weight_init

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
#: How many problems a CheckpointError lists before summarising.
_MAX_LISTED = 12


def _read_index(index: Path) -> dict[str, Path]:
    try:
        data = json.loads(index.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{index}: corrupt shard index: {exc}") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index}: corrupt shard index: no 'weight_map' object mapping keys to shard files")
    files: dict[str, Path] = {}
    for key, shard in weight_map.items():
        if not isinstance(shard, str) or not shard or Path(shard).name != shard:
            raise CheckpointError(f"{index}: corrupt shard index: key '{key}' maps to {shard!r}, not a file name")
        files[key] = index.parent / shard
    missing = sorted({p for p in files.values() if not p.is_file()})
    if missing:
        raise CheckpointError(
            f"{index}: shard file(s) missing: {', '.join(str(p) for p in missing)} "
            f"(needed for e.g. key '{next(k for k, p in files.items() if p == missing[0])}')"
        )
    return files


def _shard_keys(path: Path) -> list[str]:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return list(fh.keys())
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file: {exc}") from None


def checkpoint_key_files(folder: str | Path) -> dict[str, Path]:
    """Every tensor key in a checkpoint folder -> the safetensors file that holds it."""
    folder = Path(folder)
    index, single = folder / INDEX_NAME, folder / WEIGHTS_NAME
    if index.is_file():
        listed = _read_index(index)
        found: dict[str, Path] = {}
        for shard in sorted(set(listed.values())):
            for key in _shard_keys(shard):
                found[key] = shard
        for key, shard in listed.items():
            if found.get(key) != shard:
                raise CheckpointError(f"{shard}: key '{key}' is listed in {index.name} but not stored in this shard")
        return found
    if single.is_file():
        return {key: single for key in _shard_keys(single)}
    raise CheckpointError(f"{folder}: no {WEIGHTS_NAME} or {INDEX_NAME} found")


def load_state_strict(model: torch.nn.Module, folder: str | Path) -> list[Path]:
    """Copy a checkpoint folder's tensors into ``model`` (strict); returns the weight files read."""
    stored = checkpoint_key_files(folder)
    target = model.state_dict()  # shares storage with the parameters and buffers
    by_key: dict[str, tuple[str, Path]] = {}
    problems: list[str] = []
    for raw, path in stored.items():
        key = canonical_key(raw)
        if key in by_key:
            problems.append(f"{path}: key '{raw}' duplicates '{by_key[key][0]}' (two weight-norm spellings)")
        by_key[key] = (raw, path)
    for key in sorted(set(target) - set(by_key)):
        problems.append(f"{folder}: missing key '{key}' (shape {list(target[key].shape)})")
    for key in sorted(set(by_key) - set(target)):
        raw, path = by_key[key]
        problems.append(f"{path}: unexpected key '{raw}'")

    shapes: dict[str, list[int]] = {}
    for path in sorted(set(stored.values())):
        with safe_open(str(path), framework="pt") as fh:
            for raw in fh.keys():
                shapes[raw] = fh.get_slice(raw).get_shape()
    for key in sorted(set(by_key) & set(target)):
        raw, path = by_key[key]
        want, got = list(target[key].shape), shapes[raw]
        if got != want and not (is_initted_flag(key) and got in ([1], [])):
            problems.append(f"{path}: key '{raw}' has shape {got}, the model expects {want}")
    if problems:
        more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        raise CheckpointError(
            f"checkpoint {folder} does not match the HeartCodec built from its config.json:\n  "
            + "\n  ".join(problems[:_MAX_LISTED])
            + more
        )

    with torch.no_grad():
        for path in sorted(set(stored.values())):
            with safe_open(str(path), framework="pt") as fh:
                for raw in fh.keys():
                    key = canonical_key(raw)
                    tensor = fh.get_tensor(raw)
                    if is_initted_flag(key):
                        tensor = adapt_initted(tensor, target[key])
                    target[key].copy_(tensor)
    return sorted(set(stored.values()))


def _resolve_folder(path: str | Path) -> Path:
    path = locate_checkpoint(path, "HeartCodec checkpoint")
    if path.is_file() and path.suffix == ".safetensors":
        path = path.parent
    if not path.is_dir():
        raise CheckpointError(f"{path}: HeartCodec checkpoint folder not found")
    return path


def configure_precision(dtype: torch.dtype, allow_low_precision: bool, allow_tf32: bool) -> None:
    """Refuse half precision unless forced; switch TF32 off (it perturbs RVQ distances and ninths rounding)."""
    if dtype in (torch.float16, torch.bfloat16):
        why = (
            "ScalarModel.decode rounds latents to ninths and the RVQ picks nearest codes by distance; "
            "in half precision both flip decisions, so results drift from float32"
        )
        if not allow_low_precision:
            raise ValueError(
                f"refusing to run HeartCodec in {dtype}: {why}. Pass allow_low_precision=True to force it."
            )
        warnings.warn(f"HeartCodec forced to {dtype} (the RVQ and conditioning stay float32): {why}", stacklevel=3)
    elif dtype != torch.float32:
        raise ValueError(f"unsupported HeartCodec dtype {dtype}; use torch.float32")
    if not allow_tf32:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def finalize(model: HeartCodec, device: str | torch.device, dtype: torch.dtype) -> HeartCodec:
    """Frozen, eval mode, on ``device``.

    A forced low ``dtype`` applies to the two heavy parts only (estimator, ScalarModel): the RVQ
    and the small conditioning layers stay float32 so token lookups and nearest codes are exact.
    """
    model = freeze(model).to(device)
    if dtype != torch.float32:
        model.flow_matching.estimator.to(dtype)
        model.scalar_model.to(dtype)
    return model


def _resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    return parse_dtype(dtype) or torch.float32


def load_codec(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
    *,
    allow_low_precision: bool = False,
    allow_tf32: bool = False,
    compile: bool = False,
) -> HeartCodec:
    """Load a HeartCodec checkpoint folder (strict), or one of the codecs built into the package.

    ``path`` is a released folder (``HeartCodec-oss``, ``HeartCodec-oss-20260123``), a
    ``.safetensors`` file inside one, or a Hugging Face Hub repo id (``HeartMuLa/HeartCodec-oss-20260123``,
    see :mod:`heartcodec_lab.codec.checkpoints`). ``None`` (or ``"embedded:minicodec"``) is the
    shipped miniature codec (:mod:`heartcodec_lab.codec.miniature`: trained on synthetic music,
    far smaller than the released one); ``"embedded:random"`` the tiny random-weight codec
    (:mod:`heartcodec_lab.codec.random_codec`: right shapes, noise). Returns the model frozen in eval
    mode on ``device`` ("auto" = CUDA when available). Float32 only unless
    ``allow_low_precision``; TF32 matmuls are switched off globally unless ``allow_tf32``.
    ``compile=True`` compiles the flow-matching estimator with inductor (opt-in; see
    :mod:`heartcodec_lab.codec.compiling`: the first detokenize pays the compilation).
    """
    builtin = embedded_codec_name(path)
    device, dtype = resolve_device(device), _resolve_dtype(dtype)
    configure_precision(dtype, allow_low_precision, allow_tf32)
    if builtin == "random":
        from .random_codec import build_random_codec

        return _maybe_compile(finalize(build_random_codec(), device, dtype), compile)
    if builtin == "minicodec":
        from .miniature import shipped_codec_dir

        folder = shipped_codec_dir()
        if not (folder / "config.json").is_file():
            raise CheckpointError(
                f"{folder}: the miniature codec's weights are not in this installation "
                f"(codec.path={RANDOM_CODEC} builds the random tiny codec)"
            )
    else:
        folder = _resolve_folder(path)
    config = HeartCodecConfig.from_json(folder / "config.json")
    with skip_weight_init():
        model = HeartCodec(config)
    files = load_state_strict(model, folder)
    kind = "embedded-minicodec" if builtin else "checkpoint"
    model.source = {"kind": kind, "path": str(folder.resolve()), "files": [str(f) for f in files]}
    return _maybe_compile(finalize(model, device, dtype), compile)


def _maybe_compile(model: HeartCodec, compile: bool) -> HeartCodec:
    if compile:
        from .compiling import compile_estimator

        compile_estimator(model)
    return model
