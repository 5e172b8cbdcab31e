"""The one interface every audio -> HeartMuLa-token encoder implements.

An encoder works on fixed, independent chunks of audio at its own native rate
(29.76 s for both the official vqv12 encoder and the projection encoders), so:

* the frame count for a given duration is the same for every encoder
  (:func:`num_token_frames`),
* long inputs cost bounded memory (chunks are encoded ``batch_chunks`` at a time),
* a bulk job can stream a file chunk by chunk and batch chunks from several files
  through :meth:`AudioEncoder.encode_chunks` and get exactly what :meth:`AudioEncoder.encode`
  returns for the whole file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

TOKEN_RATE_HZ = 12.5
NUM_QUANTIZERS = 8
FEATURE_DIM = 512


def num_token_frames(num_samples: int, sample_rate: int, frames_per_chunk: int, chunk_seconds: float) -> int:
    """Frames an encoder emits for ``num_samples`` at ``sample_rate``.

    The released rule is ``int(seconds * 12.5) + 1``, but never more frames than the
    zero-padded chunks produce (one full 29.76 s chunk gives 372, not 373).
    """
    if num_samples <= 0:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    seconds = num_samples / sample_rate
    n_chunks = max(1, math.ceil(round(seconds / chunk_seconds, 9)))
    return min(int(seconds * TOKEN_RATE_HZ) + 1, n_chunks * frames_per_chunk)


@dataclass
class EncodedAudio:
    """tokens: int64 ``[8, T]`` codes; features: float32 ``[T, 512]`` before quantization."""

    tokens: torch.Tensor
    features: torch.Tensor


class AudioEncoder(nn.Module):
    """Base class: audio ``[C, S]`` at any rate -> tokens ``[8, T]`` at 12.5 Hz.

    Subclasses set ``native_sample_rate``, ``chunk_samples`` (native samples per
    independent chunk) and ``frames_per_chunk``, and implement :meth:`encode_chunks`.
    ``quantizer`` is the frozen ResidualVQ shared with the decoder (a
    ``vector_quantize_pytorch.ResidualVQ`` in eval mode).
    """

    native_sample_rate: int
    chunk_samples: int
    frames_per_chunk: int
    encoder_id: str = "encoder"

    def __init__(self, quantizer: nn.Module, batch_chunks: int = 1):
        super().__init__()
        self.quantizer = quantizer
        self.batch_chunks = batch_chunks

    # -- what subclasses provide -------------------------------------------------------
    def encode_chunks(self, chunks: torch.Tensor) -> torch.Tensor:
        """chunks ``[B, 2, chunk_samples]`` at the native rate -> features ``[B, frames_per_chunk, 512]``."""
        raise NotImplementedError

    def encode_last_chunk(self, chunk: torch.Tensor, frames: int) -> torch.Tensor:
        """The final, zero-padded chunk ``[1, 2, chunk_samples]`` -> features ``[1, frames, 512]``.

        Subclasses whose output frames depend only on nearby samples may override this to skip
        the padding (a 5 s clip then costs 5 s, not 29.76 s), as long as the result is the same.
        """
        return self.encode_chunks(chunk)[:, :frames]

    def describe(self) -> dict:
        """JSON-able identity of the encoder (id, config, checkpoint hashes) for dataset_info.json."""
        return {"encoder": self.encoder_id}

    # -- shared machinery --------------------------------------------------------------
    @property
    def chunk_seconds(self) -> float:
        return self.chunk_samples / self.native_sample_rate

    def num_frames(self, num_samples: int, sample_rate: int) -> int:
        return num_token_frames(num_samples, sample_rate, self.frames_per_chunk, self.chunk_seconds)

    def prepare(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``[C, S]`` (or ``[S]``) at ``sample_rate`` -> float32 stereo ``[2, S']`` at the native rate."""
        from heartcodec_lab.audio import resample, to_stereo

        if audio.dim() == 1:
            audio = audio.unsqueeze(0)
        audio = to_stereo(audio.float())
        return resample(audio, sample_rate, self.native_sample_rate)

    @torch.no_grad()
    def quantize(self, features: torch.Tensor) -> torch.Tensor:
        """features ``[B, T, 512]`` -> int64 codes ``[B, 8, T]`` (eval-mode nearest codes, float32)."""
        from heartcodec_lab.codec.quantizer import nearest_codes

        return nearest_codes(self.quantizer, features)[1]

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, sample_rate: int) -> EncodedAudio:
        """Audio ``[C, S]`` at ``sample_rate`` -> :class:`EncodedAudio` with ``T = num_frames(S, sample_rate)``."""
        native = self.prepare(audio, sample_rate)
        n_frames = self.num_frames(native.shape[-1], self.native_sample_rate)
        n_chunks = max(1, math.ceil(native.shape[-1] / self.chunk_samples))
        padded = torch.nn.functional.pad(native, (0, n_chunks * self.chunk_samples - native.shape[-1]))
        chunks = padded.reshape(2, n_chunks, self.chunk_samples).transpose(0, 1)
        feats = []
        for start in range(0, n_chunks - 1, self.batch_chunks):
            f = self.encode_chunks(chunks[start : min(start + self.batch_chunks, n_chunks - 1)])
            feats.append(f.reshape(-1, f.shape[-1]))
        last_frames = n_frames - (n_chunks - 1) * self.frames_per_chunk
        feats.append(self.encode_last_chunk(chunks[-1:], last_frames)[0])
        features = torch.cat(feats, 0)[:n_frames].float()
        tokens = self.quantize(features[None])[0]
        return EncodedAudio(tokens=tokens, features=features)

    def tokenize(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Shortcut: int64 tokens ``[8, T]``."""
        return self.encode(audio, sample_rate).tokens
