"""The official HeartCodec encoder (vqv12) behind the common :class:`AudioEncoder` interface."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..base import AudioEncoder
from .config import CHUNK_SAMPLES, NATIVE_SAMPLE_RATE, TAIL_SAMPLES, complete_config, stream_widths
from .frontends import FeatureExtractors
from .query_transformer import QueryEncoder


class VQV12Encoder(nn.Module):
    """Feature extractors + query encoder; its ``state_dict`` is the checkpoint's ``encoder.*`` part.

    chunks ``[B, 2, 714240 + 240]`` at 24 kHz -> features ``[B, 372, dim]``.
    """

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.config = complete_config(config)
        self.feature_extractors = FeatureExtractors(self.config["feature_extractors"])
        self.query = QueryEncoder(stream_widths(self.config), **self.config["query"])
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VQV12Encoder:
        # Always frozen: a parent's .train() (e.g. a LightningModule holding a distillation
        # teacher) must not switch on the sub-models' dropout and layer drop.
        return super().train(False)

    def forward(self, chunks_with_tail: Tensor) -> Tensor:
        from heartcodec_lab.codec.precision import autocast

        streams = self.feature_extractors(chunks_with_tail)
        with autocast(self.feature_extractors.transformer_dtype, chunks_with_tail.device):
            return self.query(*streams).float()


class OfficialEncoder(AudioEncoder):
    """Audio ``[C, S]`` at any rate -> int64 tokens ``[8, T]`` with the released vqv12 encoder.

    ``quantizer`` is the decoder's ResidualVQ (shared, never copied). Inputs are
    resampled to 24 kHz with torchaudio's default resampler (as released), cut into
    29.76 s chunks, each given a 240-sample zero tail, encoded, quantized and trimmed
    to ``int(seconds * 12.5) + 1`` frames (at most 372 per chunk).
    """

    native_sample_rate = NATIVE_SAMPLE_RATE
    chunk_samples = CHUNK_SAMPLES
    frames_per_chunk = CHUNK_SAMPLES // 1920  # 372
    encoder_id = "official-vqv12"

    def __init__(self, encoder: VQV12Encoder, quantizer: nn.Module, batch_chunks: int = 1, source: dict | None = None):
        super().__init__(quantizer, batch_chunks=batch_chunks)
        if batch_chunks < 1:
            raise ValueError(f"batch_chunks must be >= 1, got {batch_chunks}")
        self.encoder = encoder
        self.source = dict(source or {})
        dim = encoder.config["query"]["dim"]
        quantizer_dim = getattr(quantizer, "dim", None) or quantizer.project_in.in_features
        if quantizer_dim != dim:
            raise ValueError(f"the quantizer takes {quantizer_dim}-d features but the encoder emits {dim}-d")
        self.precision_choice = None  # set_precision: bf16 autocast of the transformers, else float32
        self.requires_grad_(False)
        self.eval()

    def set_precision(self, name: str = "fp32"):
        """``fp32 | bf16 | auto`` (:mod:`heartcodec_lab.codec.precision`); returns the choice.

        bf16 runs the encoder's matmuls and convolutions (Whisper, WavLM, the query transformer)
        under bf16 autocast with float32 weights; the mel / STFT front ends, the features handed to
        the RVQ and the RVQ distances stay float32. fp32 is today's path, bit for bit.
        """
        from heartcodec_lab.codec.precision import resolve_precision

        device = next(self.encoder.parameters()).device
        self.precision_choice = resolve_precision(name, "official_encoder", device)
        self.encoder.feature_extractors.transformer_dtype = self.precision_choice.dtype  # instance attribute
        return self.precision_choice

    @property
    def config(self) -> dict[str, Any]:
        return self.encoder.config

    def prepare(self, audio: Tensor, sample_rate: int) -> Tensor:
        """``[S]`` / ``[1|2, S]`` -> float32 ``[2, S']`` at 24 kHz, exactly as the released tokenizer.

        Mono is duplicated; more than two channels go through the shared downmix policy.
        """
        from torchaudio.functional import resample

        if audio.dim() == 1:
            audio = audio.unsqueeze(0)
        if audio.dim() != 2 or audio.shape[-1] == 0:
            raise ValueError(f"audio must be [channels, samples] with samples > 0, got {tuple(audio.shape)}")
        if audio.shape[0] > 2:
            return super().prepare(audio, sample_rate)
        audio = audio.detach().to("cpu", torch.float32)
        if not torch.isfinite(audio).all():
            raise ValueError("audio contains NaN or infinite samples")
        audio = audio.expand(2, -1) if audio.shape[0] == 1 else audio
        if sample_rate != self.native_sample_rate:
            audio = resample(audio, sample_rate, self.native_sample_rate)
        return audio

    def encode_chunks(self, chunks: Tensor) -> Tensor:
        """chunks ``[B, 2, 714240]`` at 24 kHz -> features ``[B, 372, 512]`` (the tail is added here)."""
        if chunks.dim() != 3 or chunks.shape[1:] != (2, self.chunk_samples):
            raise ValueError(f"expected chunks [B, 2, {self.chunk_samples}], got {tuple(chunks.shape)}")
        device = next(self.encoder.parameters()).device
        with torch.inference_mode():
            with_tail = torch.nn.functional.pad(chunks.to(device, torch.float32, non_blocking=True), (0, TAIL_SAMPLES))
            features = self.encoder(with_tail)
        # A normal float32 tensor again, so callers may use it as a training target (and the RVQ stays float32).
        return features.float().clone()

    def describe(self) -> dict:
        """Encoder id, config, checkpoint path and the weights' sha256 (hashed once, on first call)."""
        weights = self.source.get("weights_file")
        if weights and "sha256" not in self.source:
            from heartcodec_lab.codec.weights import file_sha256

            self.source["sha256"] = file_sha256(weights)
        return {"encoder": self.encoder_id, "config": self.config, **self.source}
