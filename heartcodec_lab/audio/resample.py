"""Resampling with torchaudio (the same call the released encoder uses), whole or block by block."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torchaudio.functional as AF


def resample(audio: torch.Tensor, sample_rate: int, target_rate: int) -> torch.Tensor:
    """``[..., S]`` at ``sample_rate`` -> ``[..., S']`` at ``target_rate`` (no-op when equal).

    Uses ``torchaudio.functional.resample`` with its default (windowed sinc) settings so the
    official encoder's resampling is reproduced exactly.
    """
    if sample_rate == target_rate:
        return audio
    if sample_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {sample_rate} -> {target_rate}")
    return AF.resample(audio, int(sample_rate), int(target_rate))


class BlockResampler:
    """Resample a stream of ``[C, n]`` blocks exactly like one ``resample`` call on their concatenation.

    The windowed-sinc resampler is a polyphase FIR filter: with ``L/M`` the reduced rate ratio,
    output sample ``k`` depends only on input samples near ``(k // M) * L``. Keeping the buffer
    start on a multiple of ``L`` aligns the buffer's outputs with the whole-file outputs, and a
    context of several filter widths on each side keeps the zero padding at the buffer edges away
    from every sample that is emitted.
    """

    def __init__(self, sr_in: int, sr_out: int, resample_fn: Callable = resample, max_filter_width: int = 64):
        self.sr_in, self.sr_out, self.resample_fn = int(sr_in), int(sr_out), resample_fn
        g = math.gcd(self.sr_in, self.sr_out)
        self.L, self.M = self.sr_in // g, self.sr_out // g
        # filter half-width in input samples is about width * L / min(L, M); keep ample margin
        half_width = math.ceil((max_filter_width + 1) * self.L / min(self.L, self.M))
        self.context = self.L * math.ceil((half_width + 2 * self.L) / self.L)
        self.buffer: torch.Tensor | None = None
        self.buffer_start = 0  # input index of buffer[:, 0], always a multiple of L
        self.total_in = 0
        self.emitted = 0  # output samples already returned

    @property
    def passthrough(self) -> bool:
        return self.sr_in == self.sr_out

    def push(self, block: torch.Tensor) -> torch.Tensor:
        """Add input ``[C, n]``; return the output samples that are now final ``[C, k]``."""
        self.total_in += block.shape[-1]
        if self.passthrough:
            self.emitted += block.shape[-1]
            return block
        self.buffer = block if self.buffer is None else torch.cat([self.buffer, block], dim=-1)
        safe_blocks = (self.total_in - self.context) // self.L
        if safe_blocks * self.M <= self.emitted:
            return block.new_zeros(block.shape[0], 0)
        out = self._take(safe_blocks * self.M)
        keep_from = max(self.buffer_start, safe_blocks * self.L - self.context)
        self.buffer = self.buffer[:, keep_from - self.buffer_start :]
        self.buffer_start = keep_from
        return out

    def flush(self) -> torch.Tensor:
        """The remaining output at end of stream (total length ``ceil(total_in * M / L)``)."""
        if self.passthrough or self.buffer is None:
            return torch.zeros(0, 0) if self.buffer is None else self.buffer.new_zeros(self.buffer.shape[0], 0)
        return self._take(-(-self.total_in * self.M // self.L))

    def _take(self, until: int) -> torch.Tensor:
        out = self.resample_fn(self.buffer, self.sr_in, self.sr_out)
        offset = self.buffer_start // self.L * self.M
        piece = out[:, self.emitted - offset : until - offset]
        self.emitted = until
        return piece
