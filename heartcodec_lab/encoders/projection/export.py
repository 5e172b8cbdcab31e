"""Projection checkpoints for use outside training: safetensors weights + a JSON config.

A checkpoint is a folder::

    projection.safetensors     the projection's state_dict (float32, no pickles)
    projection_config.json     format_version, kind, kwargs, codec (what it was trained against),
                               toolkit_version, weights_sha256, extra

Loading is strict: unknown kind, bad kwargs, missing/unexpected tensors or shape mismatches
raise :class:`ProjectionCheckpointError` naming the file.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from heartcodec_lab.codec.checkpoints import CheckpointError, load_strict, locate_checkpoint
from heartcodec_lab.codec.weights import file_sha256 as _sha256

from .encoder import ProjectionEncoder
from .modules import PROJECTIONS, Projection, build_projection

FORMAT_VERSION = 1
WEIGHTS_NAME = "projection.safetensors"
CONFIG_NAME = "projection_config.json"
DEFAULT_KIND = "conv1d"
DEFAULT_SEED = 0


#: the one checkpoint error type (kept under this name for callers of the projection API)
ProjectionCheckpointError = CheckpointError


def _toolkit_version() -> str:
    from heartcodec_lab import __version__

    return __version__


def save_projection(
    out_dir: str | Path,
    projection: Projection,
    codec_info: dict,
    extra: dict | None = None,
    provenance: dict | None = None,
) -> Path:
    """Write ``projection.safetensors`` + ``projection_config.json`` into ``out_dir``; returns the folder.

    ``codec_info`` is ``codec.describe()`` of the codec the projection was trained against;
    ``extra`` (JSON-able) is free-form (training step, metrics, recipe); ``provenance``
    (:meth:`heartcodec_lab.provenance.Provenance.as_dict`) says which parts of the training run were embedded.
    """
    if projection.kind not in PROJECTIONS:
        raise ValueError(f"cannot export projection of unknown kind {projection.kind!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in projection.state_dict().items()}
    weights = out / WEIGHTS_NAME
    save_file(tensors, str(weights), metadata={"format": "pt", "kind": projection.kind})
    config = {
        "format_version": FORMAT_VERSION,
        "kind": projection.kind,
        "kwargs": projection.config,
        "codec": codec_info,
        "toolkit_version": _toolkit_version(),
        "weights_sha256": _sha256(weights),
        "provenance": provenance,
        "extra": extra or {},
    }
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
    return out


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise ProjectionCheckpointError(
            f"{path}: missing ({CONFIG_NAME} and {WEIGHTS_NAME} make a projection checkpoint)"
        )
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ProjectionCheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ProjectionCheckpointError(f"{path}: expected a JSON object")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ProjectionCheckpointError(
            f"{path}: unsupported format_version {version!r} (this toolkit reads {FORMAT_VERSION})"
        )
    for key in ("kind", "kwargs"):
        if key not in config:
            raise ProjectionCheckpointError(f"{path}: missing key {key!r}")
    if config["kind"] not in PROJECTIONS:
        raise ProjectionCheckpointError(
            f"{path}: unknown projection kind {config['kind']!r}; known: {sorted(PROJECTIONS)}"
        )
    return config


def load_projection(path: str | Path) -> tuple[Projection, dict]:
    """Folder (or a file inside it, or a Hub repo id) -> (projection in eval mode, its config dict). Strict."""
    folder = locate_checkpoint(path, "projection checkpoint")
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise ProjectionCheckpointError(f"{folder}: no such projection checkpoint folder")
    config = _read_config(folder / CONFIG_NAME)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise ProjectionCheckpointError(f"{weights}: missing")
    expected_sha = config.get("weights_sha256")
    if expected_sha and _sha256(weights) != expected_sha:
        raise ProjectionCheckpointError(f"{weights}: sha256 differs from {CONFIG_NAME} (file changed or corrupted)")
    try:
        projection = build_projection(config["kind"], **config["kwargs"])
    except (ValueError, TypeError) as err:
        raise ProjectionCheckpointError(f"{folder / CONFIG_NAME}: {err}") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise ProjectionCheckpointError(f"{weights}: not a readable safetensors file ({err})") from None
    load_strict(projection, state, weights)
    return projection.eval(), config


def codec_identity(info: dict | None) -> str:
    """What makes two ``codec.describe()`` dicts the same codec: the weights hash, else all but the path."""
    info = info or {}
    if info.get("sha256"):
        return json.dumps(info["sha256"], sort_keys=True, default=str)
    return json.dumps({k: v for k, v in info.items() if k != "path"}, sort_keys=True, default=str)


def _codec_label(info: dict | None) -> str:
    """Short name of a codec description: its folder (or kind/seed) and the first weight hash."""
    info = info or {}
    where = info.get("path") or f"{info.get('kind', 'unknown')}" + (f" seed {info['seed']}" if "seed" in info else "")
    hashes = info.get("sha256") or {}
    first = next(iter(sorted(hashes.items())), None)
    return f"{where}" + (f" ({first[0]} sha256 {first[1][:12]})" if first else "")


def _codec_sizes(codec: nn.Module) -> tuple[int | None, int | None]:
    cfg = getattr(codec, "config", None)
    return getattr(cfg, "dim", None), getattr(cfg, "latent_hidden_dim", None)


def default_projection(codec: nn.Module, kind: str = DEFAULT_KIND, seed: int = DEFAULT_SEED, **kwargs) -> Projection:
    """An untrained projection sized for ``codec``, initialised deterministically from ``seed``."""
    dim, latent_dim = _codec_sizes(codec)
    sizes = {k: v for k, v in (("out_dim", dim), ("latent_dim", latent_dim)) if v is not None}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_projection(kind, **{**sizes, **kwargs})


def load_projection_encoder(
    path: str | Path | None,
    codec: nn.Module,
    batch_chunks: int = 1,
    kind: str = DEFAULT_KIND,
    seed: int = DEFAULT_SEED,
    allow_codec_mismatch: bool = False,
    **projection_kwargs,
) -> ProjectionEncoder:
    """Checkpoint folder (or None) + codec -> :class:`ProjectionEncoder` in eval mode.

    ``path=None`` gives an untrained ``kind`` projection (default conv1d) with a fixed ``seed``:
    deterministic tokens for tests and demos, not meaningful ones. ``kind`` and
    ``projection_kwargs`` only apply to that case. Refuses a checkpoint trained against another
    codec (its tokens would not mean what this codec's decoder expects) unless
    ``allow_codec_mismatch`` (then it warns); raises when its sizes do not fit this codec.
    """
    if path is None:
        projection = default_projection(codec, kind=kind, seed=seed, **projection_kwargs)
        return ProjectionEncoder(
            codec, projection, batch_chunks, checkpoint={"path": None, "untrained_seed": seed}
        ).eval()
    if projection_kwargs:
        raise ValueError(
            f"projection kwargs {sorted(projection_kwargs)} only apply to path=None; {path} has its own config"
        )
    projection, config = load_projection(path)
    folder = locate_checkpoint(path, "projection checkpoint")
    folder = folder if folder.is_dir() else folder.parent
    dim, latent_dim = _codec_sizes(codec)
    if dim is not None and projection.out_dim != dim:
        raise ProjectionCheckpointError(
            f"{folder / CONFIG_NAME}: projection out_dim {projection.out_dim} != codec dim {dim}"
        )
    if latent_dim is not None and projection.config["latent_dim"] != latent_dim:
        raise ProjectionCheckpointError(
            f"{folder / CONFIG_NAME}: projection latent_dim {projection.config['latent_dim']} "
            f"!= codec latent_hidden_dim {latent_dim}"
        )
    if hasattr(codec, "describe") and codec_identity(config.get("codec")) != codec_identity(codec.describe()):
        trained, used = _codec_label(config.get("codec")), _codec_label(codec.describe())
        message = (
            f"{folder / CONFIG_NAME}: the projection was trained against codec {trained} but would run with "
            f"codec {used}; point codec.path at the codec it was trained with "
            f"(or encoder.allow_codec_mismatch=true to force it)"
        )
        if not allow_codec_mismatch:
            raise ProjectionCheckpointError(message)
        warnings.warn(message, stacklevel=2)
    checkpoint = {
        "path": str(folder),
        "weights_sha256": config.get("weights_sha256"),
        "trained_codec": config.get("codec"),
    }
    return ProjectionEncoder(codec, projection, batch_chunks, checkpoint=checkpoint).eval()
