"""ProjectionEncoder: frozen ScalarModel encoder -> trainable projection -> frozen RVQ."""

from __future__ import annotations

import torch
from torch import nn

from heartcodec_lab.audio.rates import SAMPLE_RATE
from heartcodec_lab.codec.runtime import freeze
from heartcodec_lab.encoders.base import AudioEncoder

from .modules import Projection

LATENT_HOP = 1920  # 48 kHz samples per 25 Hz ScalarModel latent frame
CHUNK_SAMPLES = 1428480  # 29.76 s at 48 kHz, the official encoder's chunk length
FRAMES_PER_CHUNK = CHUNK_SAMPLES // LATENT_HOP // 2  # 372


class ProjectionEncoder(AudioEncoder):
    """Audio at 48 kHz -> ScalarModel latents (both channels, 25 Hz) -> projection (12.5 Hz).

    ``codec`` is a HeartCodec (``scalar_model``, ``quantizer``, ``config``, ``describe()``); it is
    frozen and kept in eval mode even when this module is put in train mode, so the shared
    ResidualVQ never updates its codebooks. Only ``projection`` is trainable.
    """

    native_sample_rate = SAMPLE_RATE
    chunk_samples = CHUNK_SAMPLES
    frames_per_chunk = FRAMES_PER_CHUNK

    def __init__(self, codec: nn.Module, projection: Projection, batch_chunks: int = 1, checkpoint: dict | None = None):
        if batch_chunks < 1:
            raise ValueError(f"batch_chunks must be >= 1, got {batch_chunks}")
        super().__init__(codec.quantizer, batch_chunks)
        self.codec = freeze(codec)
        self.projection = projection
        self.encoder_id = f"projection-{projection.kind}"
        # where the projection came from (path, sha256), for describe()
        self.checkpoint = dict(checkpoint or {})

    def train(self, mode: bool = True) -> ProjectionEncoder:
        super().train(mode)
        freeze(self.codec)
        self.quantizer.eval()
        return self

    @torch.no_grad()
    def latents(self, chunks: torch.Tensor) -> torch.Tensor:
        """chunks ``[B, 2, S]`` at 48 kHz -> latents ``[B, 256, S // 1920]`` = cat(left 128, right 128)."""
        if chunks.dim() != 3 or chunks.shape[1] != 2:
            raise ValueError(f"expected stereo audio [B, 2, S], got {tuple(chunks.shape)}")
        b, c, s = chunks.shape
        # encode() prepares audio on the CPU; the codec may live on a GPU
        chunks = chunks.to(next(self.codec.scalar_model.parameters()).device)
        # both channels go through the mono ScalarModel encoder as one batch
        lat = self.codec.scalar_model.encode(chunks.reshape(b * c, 1, s).float())
        return lat.reshape(b, c * lat.shape[1], lat.shape[2])

    def encode_chunks(self, chunks: torch.Tensor) -> torch.Tensor:
        """chunks ``[B, 2, S]`` (S = 1428480 for a full chunk) -> features ``[B, S // 3840, 512]`` (before quantization)."""
        return self.projection(self.latents(chunks))

    def encode_last_chunk(self, chunk: torch.Tensor, frames: int) -> torch.Tensor:
        """Encode only as much of the zero-padded last chunk as ``frames`` can see.

        The ScalarModel encoder is causal and the projection reaches ``context_frames`` latent
        frames to each side, so cutting the chunk that far past the last kept frame (rounded to
        whole token frames) gives the same features as encoding all 29.76 s.
        """
        token_hop = 2 * LATENT_HOP
        context = -(-self.projection.context_frames * LATENT_HOP // token_hop) * token_hop
        keep = min(self.chunk_samples, frames * token_hop + context)
        return self.encode_chunks(chunk[..., :keep])[:, :frames]

    def forward(self, chunks: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`encode_chunks`; gradients reach the projection only."""
        return self.encode_chunks(chunks)

    def describe(self) -> dict:
        codec_info = self.codec.describe() if hasattr(self.codec, "describe") else {}
        return {
            "encoder": self.encoder_id,
            "projection": {"kind": self.projection.kind, **self.projection.config},
            "checkpoint": self.checkpoint or None,
            "codec": codec_info,
            "native_sample_rate": self.native_sample_rate,
            "chunk_samples": self.chunk_samples,
            "frames_per_chunk": self.frames_per_chunk,
        }
