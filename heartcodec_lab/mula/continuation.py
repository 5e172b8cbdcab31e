"""Continue a piece: history tokens from a ``.npy`` file or from audio, then generation.

The history frames follow the prompt in the same forward pass that fills the KV
cache, so the first new frame is the model's own prediction after the last
history frame (fed exactly once). The result holds history + new frames and is
decoded as one piece.
"""

from __future__ import annotations

from pathlib import Path

import torch

from heartcodec_lab.codec.token_files import read_token_file
from heartcodec_lab.mula.generation import GenerationConfig, GenerationResult, generate


def load_token_file(path: str | Path, codebook_size: int | None = None) -> torch.Tensor:
    """``.npy`` token file -> int64 ``[8, T]`` (see :func:`heartcodec_lab.codec.token_files.read_token_file`)."""
    return torch.from_numpy(read_token_file(path, codebook_size))


def encode_audio_file(
    path: str | Path, codec, encoder: str = "official", encoder_path: str | None = None
) -> torch.Tensor:
    """Audio file -> int64 tokens ``[8, T]`` with any configured encoder (shares ``codec``'s quantizer)."""
    from heartcodec_lab.audio import load_audio
    from heartcodec_lab.encoders import build_encoder

    audio, sample_rate = load_audio(path, channels="stereo", min_seconds=0.08)
    enc = build_encoder(encoder, encoder_path, codec)
    with torch.no_grad():
        return enc.tokenize(audio, sample_rate).long().cpu()


def load_history(
    source: str | Path,
    codec=None,
    encoder: str = "official",
    encoder_path: str | None = None,
    codebook_size: int | None = None,
) -> torch.Tensor:
    """``.npy`` tokens or an audio file (needs ``codec``) -> int64 history ``[8, T]``."""
    source = Path(source)
    if source.suffix.lower() == ".npy":
        return load_token_file(source, codebook_size)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: continuation source not found")
    if codec is None:
        raise ValueError(f"{source}: continuing from audio needs a codec to encode it")
    return encode_audio_file(source, codec, encoder, encoder_path)


def continue_from(
    bundle,
    tags: str,
    lyrics: str,
    source: str | Path | torch.Tensor,
    config: GenerationConfig | None = None,
    codec=None,
    encoder: str = "official",
    encoder_path: str | None = None,
    **kwargs,
) -> GenerationResult:
    """Generate after a history (tokens ``[8, H]``, a ``.npy`` file or audio) and decode it all with ``codec``."""
    if isinstance(source, torch.Tensor):
        history = source
    else:
        history = load_history(source, codec, encoder, encoder_path, bundle.config.codebook_size)
    return generate(bundle, tags, lyrics, config, codec=codec, history=history, **kwargs)
