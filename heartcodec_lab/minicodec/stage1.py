"""Stage 1: the ScalarModel autoencoder (mono audio ``[B, 1, S]`` -> latents ``[B, 128, S/1920]`` -> audio).

What makes it learn on a CPU budget (see docs/minicodec.md):

* **data-dependent init** (:func:`lsuv_init`): at PyTorch's default init the music-dependent part
  of the encoder's output is ~100x smaller than its bias-driven constant part (the signal halves in
  every block), so the latents say nothing about the input, the decoder learns to ignore them and
  both settle on the average spectrum. Biases start at zero and every conv's gain is set on a probe
  batch so its output has a fixed spread; the pre-tanh latents start with std ``init_latent_std``
  (the rounding to ninths would otherwise map them all to zero);
* **warm-up without rounding**: for the first ``noise_steps`` steps the bottleneck adds uniform
  noise of one ninth-step instead of rounding (a differentiable stand-in for the quantiser),
  then switches to the real straight-through ``round(9x)/9`` that ``decode`` applies;
* **latent usage**: a hinge keeps every latent dimension's spread over time above a floor;
* **bounded latents**: a hinge on the pre-tanh values beyond +-2 (tanh 0.96). Without it the noise
  warm-up rewards ever larger latents (better signal-to-noise), the pre-tanh values run off to
  1e7 within a few hundred steps, tanh saturates to +-1 and the encoder stops learning;
* **log-mel L1 with a large weight** plus log-STFT, and a small waveform L1; the model learns the
  drums (broadband onsets) first and the notes late, so from ``pitch_from_step`` a log-magnitude
  loss on long STFTs below 4 kHz (:class:`~heartcodec_lab.minicodec.losses.PitchLoss`) is added.
"""

from __future__ import annotations

import torch
from torch import nn

from heartcodec_lab.codec.scalar_model import (
    LATENT_LEVELS,
    DownsampleLayer,
    ScalarModel,
    UpsampleLayer,
    quantize_latent,
)

from .losses import (
    ComplexSTFTLoss,
    LatentPhaseCode,
    LatentPhaseReadout,
    LatentPitchReadout,
    MultiMelLoss,
    MultiSTFTLoss,
    PitchLoss,
)

#: Output std each conv is set to by :func:`lsuv_init` (residual branches small: identity dominates).
LSUV_TARGET, LSUV_BRANCH_TARGET = 1.0, 0.3


@torch.no_grad()
def lsuv_init(model: ScalarModel, probe: torch.Tensor, latent_std: float = 0.6) -> None:
    """Zero biases, then set each conv's gain (in forward order) so its output std on ``probe [B, 1, S]``
    is ``LSUV_TARGET`` (``LSUV_BRANCH_TARGET`` for the last conv of a residual branch), the last encoder
    conv ``latent_std`` and the last decoder conv the probe's own std."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    targets = {}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv1d):
            targets[m] = LSUV_BRANCH_TARGET if name.endswith("conv2") else LSUV_TARGET
    targets[model.encoder[-1]] = latent_std
    targets[model.decoder[-1]] = float(probe.std())
    for conv in convs:
        conv.bias.zero_()
    for conv in convs:
        seen: dict[str, float] = {}

        def record(module, inputs, output, seen=seen):
            seen.setdefault("std", float(output.std()))  # first call only; returns None: output kept

        handle = conv.register_forward_hook(record)
        autoencode(model, probe, "none")
        handle.remove()
        factor = targets[conv] / max(seen["std"], 1e-12)
        if hasattr(conv, "parametrizations"):
            conv.parametrizations.weight.original0.mul_(factor)
        else:
            conv.weight.mul_(factor)


def triangle_kernel(stride: int) -> torch.Tensor:
    """Linear-interpolation taps ``[2 * stride]``: ``w[r] + w[r + stride] == 1`` for every phase ``r``."""
    k = torch.arange(2 * stride, dtype=torch.float32) + 0.5
    return 1 - (k - stride).abs() / stride


@torch.no_grad()
def smooth_resampling_init(model: ScalarModel, seed: int = 0) -> None:
    """Give every strided conv (encoder) and transposed conv (decoder) a triangle kernel shape.

    Each tap pattern becomes ``M[out, in] * triangle``: a random channel mix followed by linear
    interpolation (decoder) or its adjoint, a low-pass before decimation (encoder). At PyTorch's
    default init every stride phase has its own random taps, so the encoder aliases and a steady
    input comes out of each transposed conv modulated at that stage's step rate; with the triangle
    all phases sum to the same mix. Measured: a one-sample delay moves the latents by 1.4 % after
    300-400 steps against 17 % from the default init (docs/minicodec.md). Run it before :func:`lsuv_init`,
    which then sets the gains (weight norm keeps the kernel's shape).
    """
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (DownsampleLayer, UpsampleLayer)):
            conv = m.layer
            v = conv.parametrizations.weight.original1  # [out, in, k] (conv) / [in, out, k] (transposed)
            mix = torch.randn(v.shape[0], v.shape[1], 1, generator=gen) / v.shape[1] ** 0.5
            # transposed: output phase r of frame m is w[r] * x[m] + w[r + s] * x[m - 1]
            v.copy_(mix * triangle_kernel(conv.stride[0]).view(1, 1, -1))


@torch.no_grad()
def rescale_latents(model: ScalarModel, probe: torch.Tensor, target_std: float) -> float:
    """Scale the last encoder conv so the pre-tanh latents of ``probe [B, 1, S]`` have std ``target_std``."""
    x = probe
    for layer in model.encoder:
        x = layer(x)
    std = float(x.std())
    last = model.encoder[-1]
    factor = target_std / max(std, 1e-8)
    last.parametrizations.weight.original0.mul_(factor)
    last.bias.mul_(factor)
    return std


def bottleneck(z: torch.Tensor, mode: str) -> torch.Tensor:
    """``round``: the decoder's straight-through ninths; ``noise``: + U(-1/18, 1/18); ``none``: identity."""
    if mode == "round":
        return quantize_latent(z)
    if mode == "noise":
        return z + (torch.rand_like(z) - 0.5) / LATENT_LEVELS
    if mode == "none":
        return z
    raise ValueError(f"unknown bottleneck mode {mode!r}")


def decode_unrounded(model: ScalarModel, latent: torch.Tensor) -> torch.Tensor:
    """The decoder layers without the rounding that ``ScalarModel.decode`` applies first."""
    x = latent
    for layer in model.decoder:
        x = layer(x)
    return x


class Stage1Loss(nn.Module):
    """Weighted sum of log-mel L1, log-STFT, waveform L1, the latent-usage and bound hinges and the optional
    pitch / phase terms (computed only with a weight); returns (total, parts)."""

    def __init__(
        self,
        w_mel: float = 15.0,
        w_stft: float = 1.0,
        w_wave: float = 1.0,
        w_usage: float = 1.0,
        usage_floor: float = 0.15,
        w_bound: float = 1.0,
        bound: float = 2.0,
        w_sc: float = 1.0,
        w_pitch: float = 0.0,
        w_readout: float = 0.0,
        w_phase: float = 0.0,
        phase_max_hz: float = 1500.0,
        w_phase_readout: float = 0.0,
        w_phase_code: float = 0.0,
    ):
        super().__init__()
        self.mel, self.stft, self.pitch = MultiMelLoss(), MultiSTFTLoss(w_sc=w_sc), PitchLoss()
        self.phase = ComplexSTFTLoss(max_hz=phase_max_hz)
        # trainable, so only built when used (its weights join the optimizer and the checkpoint)
        self.readout = LatentPitchReadout() if w_readout else None
        self.phase_readout = LatentPhaseReadout() if w_phase_readout else None
        self.phase_code = LatentPhaseCode()
        self.w = {
            "mel": w_mel,
            "stft": w_stft,
            "wave": w_wave,
            "usage": w_usage,
            "bound": w_bound,
            "pitch": w_pitch,
            "readout": w_readout,
            "phase": w_phase,
            "phase_readout": w_phase_readout,
            "phase_code": w_phase_code,
        }
        self.usage_floor, self.bound = usage_floor, bound

    def forward(self, recon: torch.Tensor, audio: torch.Tensor, pre_tanh: torch.Tensor):
        latents = torch.tanh(pre_tanh)
        parts = {
            "mel": self.mel(recon, audio),
            "stft": self.stft(recon, audio),
            "wave": (recon - audio).abs().mean(),
            # spread over time of each latent dimension, per example
            "usage": torch.relu(self.usage_floor - latents.std(dim=-1)).mean(),
            "bound": torch.relu(pre_tanh.abs() - self.bound).mean(),
        }
        if self.w["pitch"]:
            parts["pitch"] = self.pitch(recon, audio)
        if self.readout is not None:
            parts["readout"] = self.readout(latents, audio)
        if self.w["phase"]:
            parts["phase"] = self.phase(recon, audio)
        if self.phase_readout is not None:
            parts["phase_readout"] = self.phase_readout(latents, audio)
        if self.w["phase_code"]:
            parts["phase_code"] = self.phase_code(latents, audio)
        total = sum(self.w[k] * v for k, v in parts.items() if self.w[k])
        return total, parts


def autoencode(model: ScalarModel, audio: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, 1, S]`` -> (reconstruction ``[B, 1, S]``, pre-tanh latents ``[B, 128, S/1920]``).

    Same computation as ``decode(encode(audio))`` when ``mode == "round"``.
    """
    x = audio
    for layer in model.encoder:
        x = layer(x)
    return decode_unrounded(model, bottleneck(torch.tanh(x), mode)), x
