"""The miniature codec's true encoder behind the one encoder interface (kind ``"minicodec"``).

Audio (48 kHz stereo) -> the miniature's own ScalarModel encoder (both channels, 25 Hz)
-> a conv1d network trained jointly with the RVQ and the flow-matching decoder -> 512-d
features at 12.5 Hz -> the codec's RVQ. It is stored as a projection checkpoint
(``projection.safetensors`` + ``projection_config.json``) and differs from the projection
recipes in how it was trained (with the codec, as vqv12 was with HeartCodec), not in layout.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from heartcodec_lab.codec.checkpoints import CheckpointError
from heartcodec_lab.codec.miniature import shipped_encoder_dir

from .projection import ProjectionEncoder


def load_minicodec_encoder(
    path: str | Path | None, codec: nn.Module, batch_chunks: int = 1, allow_codec_mismatch: bool = False
) -> ProjectionEncoder:
    """The true encoder from ``path`` (None: the one shipped in the package) for ``codec``.

    Its tokens only mean something to the codec it was trained with: with another ``codec`` (the
    random tiny one, a released folder) it is refused in one line naming the fix, unless
    ``allow_codec_mismatch`` (then it warns, once).
    """
    import warnings

    from .projection.export import CONFIG_NAME, _read_config, codec_identity, load_projection_encoder

    folder = shipped_encoder_dir() if path is None else Path(path)
    if hasattr(codec, "describe"):
        trained = _read_config(folder / CONFIG_NAME).get("codec")
        if codec_identity(trained) != codec_identity(codec.describe()):
            used = codec.describe()
            where = used.get("path") or used.get("kind", "another codec")
            message = (
                f"encoder.kind=minicodec: {folder} is the true encoder of the miniature codec (codec.path=null) "
                f"but the codec here is {where}; set encoder=official encoder.path=<HeartCodec-oss-encoder folder> "
                f"for a released codec, encoder=official for codec.path=embedded:random "
                f"(or encoder.allow_codec_mismatch=true to force it)"
            )
            if not allow_codec_mismatch:
                raise CheckpointError(message)
            warnings.warn(message, stacklevel=2)
    with warnings.catch_warnings():
        # a mismatch was refused or warned about above, in this encoder's words: not a second time
        warnings.filterwarnings("ignore", message=r".*the projection was trained against codec")
        encoder = load_projection_encoder(folder, codec, batch_chunks, allow_codec_mismatch=True)
    encoder.encoder_id = "minicodec-true"
    return encoder
