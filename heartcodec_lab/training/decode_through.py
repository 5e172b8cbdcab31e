"""Decode a projection's quantized features through the frozen codec's own path, differentiably.

The card's reconstruction recipe (DESIGN §5, first bullet)::

    quantized [B, T, 512] (straight-through RVQ output, 12.5 Hz)
      --FlowMatching.embedding_to_condition--> mu [B, 2T, 512] (25 Hz)
      --``num_steps`` Euler steps of the frozen DiT from fixed, seeded noise (guidance as detokenize)-->
      latents [B, 2T, 256] = (left 128 | right 128)
      --ScalarModel.decode (rounding to ninths, straight-through)--> audio [B, 2, 2T * 1920] at 48 kHz

Every Euler step (and the ScalarModel decoder) runs under activation checkpointing
(``torch.utils.checkpoint``): only the step's inputs are kept and its activations are recomputed
on the backward pass, so memory grows with the number of steps by one latent tensor each, not by
the DiT's activations. Gradients reach ``quantized`` (and so the projection) only: the codec's
parameters never require gradients and its modules stay in eval mode.

Simplifications against ``detokenize`` (stated in docs/training.md): a training crop is decoded as
the *first* window of a piece (no in-context prompt, every frame code-conditioned), with
``num_steps`` (default 2) instead of 10 Euler steps, and, to bound the cost of the 48 kHz decoder,
only ``decode_frames`` latent frames (a random span, after ``warmup_frames`` of decoder context
that are decoded and dropped) become audio. The noise is drawn from a generator seeded with
``noise_seed`` for every call: the same noise for the same shape, so the objective is a fixed
function of the tokens (as detokenize with ``torch.manual_seed`` is).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class DecodeThrough(nn.Module):
    """quantized ``[B, T, 512]`` -> (audio ``[B, 2, F * 1920]``, first sample in the crop) through the frozen codec.

    Args:
        codec: the frozen HeartCodec (``flow_matching``, ``scalar_model``); held outside the module tree.
        num_steps: differentiable Euler steps from t=0 to t=1 (detokenize uses 10).
        guidance_scale: classifier-free guidance as detokenize (1.25); 1 or less: conditional only (half the cost).
        noise_seed: seed of the fixed noise.
        decode_frames: 25 Hz latent frames decoded to audio per clip (0 or None: all of them).
        warmup_frames: latent frames decoded before the span for the causal decoder's context, then dropped.
        checkpointing: activation checkpointing of each Euler step and of the decoder.
        channels: 2 decodes both channels; 1 decodes one channel per call, drawn at random (the
            decoder is mono: half the cost, every channel seen over the steps).
    """

    def __init__(
        self,
        codec: nn.Module,
        num_steps: int = 2,
        guidance_scale: float = 1.25,
        noise_seed: int = 0,
        decode_frames: int | None = None,
        warmup_frames: int = 4,
        checkpointing: bool = True,
        channels: int = 2,
    ):
        super().__init__()
        if num_steps < 1:
            raise ValueError(f"num_steps must be at least 1, got {num_steps}")
        self._codec = {"codec": codec}  # not a submodule: never in a state_dict, an optimizer or .train()
        self.num_steps, self.guidance_scale, self.noise_seed = int(num_steps), float(guidance_scale), int(noise_seed)
        self.decode_frames = int(decode_frames or 0)
        self.warmup_frames = max(0, int(warmup_frames))
        self.checkpointing = bool(checkpointing)
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        self.channels = int(channels)

    @property
    def codec(self) -> nn.Module:
        return self._codec["codec"]

    def _maybe_checkpoint(self, fn, *args):
        if self.checkpointing and torch.is_grad_enabled() and any(a.requires_grad for a in args):
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def noise(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """The fixed noise ``[B, 2T, 256]`` for this shape (drawn on the CPU: the same on every device)."""
        gen = torch.Generator().manual_seed(self.noise_seed)
        return torch.randn(shape, generator=gen).to(device)

    def latents(self, quantized: torch.Tensor) -> torch.Tensor:
        """quantized ``[B, T, 512]`` -> latents ``[B, 2T, 256]`` after ``num_steps`` guided Euler steps."""
        fm = self.codec.flow_matching
        mu = fm.embedding_to_condition(quantized.float())  # [B, 2T, 512]
        b, frames, _ = mu.shape
        x = self.noise((b, frames, fm.latent_dim), mu.device)
        incontext = torch.zeros_like(x)  # a first window: no in-context prompt

        def step(x_in, mu_in, t):
            return x_in + dt * fm.guided_velocity(x_in, incontext, mu_in, t, self.guidance_scale)

        dt = 1.0 / self.num_steps
        for i in range(self.num_steps):
            t = torch.full((), i * dt, device=mu.device)
            x = self._maybe_checkpoint(step, x, mu, t)
        return x

    def span(self, frames: int, generator: torch.Generator | None = None) -> tuple[int, int]:
        """(first, last) latent frame of the decoded span of a ``frames``-frame crop (random when shorter)."""
        n = self.decode_frames if 0 < self.decode_frames < frames else frames
        start = int(torch.randint(0, frames - n + 1, (1,), generator=generator)) if n < frames else 0
        return start, start + n

    def decode(self, latents: torch.Tensor, start: int, stop: int, channel: int | None = None) -> torch.Tensor:
        """latents ``[B, 2T, 256]`` -> audio ``[B, 2, (stop - start) * hop]`` of frames ``start..stop``
        (``[B, 1, ...]`` of that ``channel`` only when one is given)."""
        sm = self.codec.scalar_model
        b, frames, c = latents.shape
        first = max(0, start - self.warmup_frames)
        look = sm.decoder[0].padding[0]  # the decoder's look-ahead (2 frames)
        last = min(frames, stop + look)
        stereo = latents[:, first:last].reshape(b, last - first, 2, c // 2).permute(0, 2, 3, 1)  # [B, 2, 128, F]
        if channel is not None:
            stereo = stereo[:, channel : channel + 1]
        n = stereo.shape[1]
        stereo = stereo.reshape(b * n, c // 2, last - first)

        def run(z):
            return sm.decode(z, block_frames=0)

        wav = self._maybe_checkpoint(run, stereo)  # [B*2, 1, F * hop]
        hop = sm.hop_length
        wav = wav[..., (start - first) * hop : (stop - first) * hop]
        return wav.reshape(b, n, wav.shape[-1])

    def forward(
        self, quantized: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, int, slice]:
        """quantized ``[B, T, 512]`` -> (audio ``[B, C, n * 1920]``, first audio sample of the span, the
        channels decoded as a slice of the stereo target: both, or the one drawn when ``channels=1``)."""
        latents = self.latents(quantized)
        start, stop = self.span(latents.shape[1], generator)
        channel = int(torch.randint(0, 2, (1,), generator=generator)) if self.channels == 1 else None
        chans = slice(0, 2) if channel is None else slice(channel, channel + 1)
        return self.decode(latents, start, stop, channel), start * self.codec.scalar_model.hop_length, chans
