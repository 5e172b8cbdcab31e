"""A training checkpoint -> an exported projection folder (``heartcodec-export-projection``, heartcodec_lab/cli/export.py).

Writes the projection export format (``projection.safetensors`` + ``projection_config.json``,
see :mod:`heartcodec_lab.encoders.projection.export`) from a Lightning ``.ckpt`` written by
``python train.py``. The checkpoint is read with ``torch.load(weights_only=True)`` (the
training module stores only tensors and plain types); a checkpoint that needs full
unpickling is refused unless ``trust_pickle=true`` is given, because unpickling runs code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from heartcodec_lab.codec.checkpoints import CheckpointError, load_strict

PREFIX = "projection."


#: the one checkpoint error type (kept under this name for callers of the export API)
ExportError = CheckpointError


def read_checkpoint(path: str | Path, trust_pickle: bool = False) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as err:
        raise ExportError(
            f"{path}: not loadable with weights_only=True ({str(err).splitlines()[0]}); "
            "if you trust this file, pass trust_pickle=true"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ExportError(f"{path}: not a readable torch checkpoint ({err})") from None


def export_checkpoint(ckpt_path: str | Path, out_dir: str | Path, trust_pickle: bool = False) -> Path:
    """Rebuild the projection stored in ``ckpt_path`` (strictly) and save it to ``out_dir``; returns the folder."""
    from heartcodec_lab.encoders.projection import build_projection, save_projection

    ckpt = read_checkpoint(ckpt_path, trust_pickle)
    info = ckpt.get("heartcodec_lab") if isinstance(ckpt, dict) else None
    if not info or "projection" not in info or "state_dict" not in ckpt:
        raise ExportError(
            f"{ckpt_path}: not a projection training checkpoint (no 'heartcodec_lab' section); "
            "was it written by heartcodec-train / train.py?"
        )
    spec = info["projection"]
    try:
        projection = build_projection(spec["kind"], **spec["kwargs"])
    except (KeyError, ValueError) as err:
        raise ExportError(f"{ckpt_path}: bad projection spec {spec}: {err}") from None
    state = {k[len(PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(PREFIX)}
    load_strict(projection, state, f"{ckpt_path} (projection {spec['kind']} {spec['kwargs']})")
    run_info = info.get("run_info", {})
    extra = {
        "source_checkpoint": str(Path(ckpt_path).resolve()),
        "global_step": int(ckpt.get("global_step", 0)),
        "experiment": run_info.get("experiment"),
    }
    return save_projection(
        out_dir, projection.eval(), run_info.get("codec", {}), extra=extra, provenance=run_info.get("provenance")
    )
