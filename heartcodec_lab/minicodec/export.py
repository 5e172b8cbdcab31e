"""Write the trained miniature in the released layouts.

* codec folder: ``config.json`` + ``model.safetensors`` with the released key names
  (``flow_matching.*``, ``scalar_model.*``, weight norm as ``parametrizations.weight.original0/1``,
  RVQ buffers ``initted``/``cluster_size``/``embed_avg``/``embed``) -> :func:`heartcodec_lab.codec.load_codec`;
* encoder folder: a projection checkpoint (``projection.safetensors`` + ``projection_config.json``)
  naming the codec it was trained with -> ``build_encoder("minicodec", path, codec)``.

``half=True`` stores float16 tensors (half the bytes); the loaders copy them into float32 models.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from heartcodec_lab.codec.loading import load_codec
from heartcodec_lab.codec.model import HeartCodec
from heartcodec_lab.encoders.projection.export import save_projection


def save_codec(codec: HeartCodec, folder: str | Path, half: bool = False) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, value in codec.state_dict().items():
        value = value.detach().cpu().contiguous().clone()
        if half and value.is_floating_point():
            value = value.half()
        tensors[key] = value
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    codec.config.to_json(folder / "config.json")
    return folder


def export_minicodec(
    codec: HeartCodec, encoder: torch.nn.Module, out_dir: str | Path, half: bool = False, extra: dict | None = None
) -> tuple[Path, Path]:
    """Save ``<out_dir>/codec`` and ``<out_dir>/encoder``; returns both folders."""
    out = Path(out_dir)
    codec_dir = save_codec(codec, out / "codec", half=half)
    loaded = load_codec(codec_dir)  # the encoder records the identity (hash) of the file as shipped
    enc = encoder
    if half:
        enc = type(encoder)(**encoder.config)
        enc.load_state_dict({k: v.half().float() for k, v in encoder.state_dict().items()})
    # the codec is recorded by its hash; its path relative to the encoder folder (no local paths shipped)
    codec_info = {**loaded.describe(), "path": "../codec"}
    enc_dir = save_projection(out / "encoder", enc.eval(), codec_info, extra=extra or {})
    return codec_dir, enc_dir
