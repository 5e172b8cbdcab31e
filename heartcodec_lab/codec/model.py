"""HeartCodec: tokens ``[8, T]`` at 12.5 Hz -> 48 kHz stereo audio (the decoder side of the codec).

Pipeline of :meth:`HeartCodec.detokenize`, window by window (one window in memory at a time):

    codes [8, 372] -> FlowMatching.inference_codes -> latents [1, 744, 256] at 25 Hz
    -> split into 2 x 128 (left, right) -> ScalarModel.decode (streamed, and only as far
    as the output reaches) -> [2, <= 1428480] samples -> linear cross-fade into the output

Windows are 29.76 s (372 code frames) with a hop of 320 frames; each window
after the first continues the last 104 latent frames of the previous one
(in-context prompt). The random draws happen in the released order, so with the
same seed the output matches the reference implementation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import HeartCodecConfig
from .flow_matching import FlowMatching
from .quantizer import codes_to_embedding, nearest_codes
from .scalar_model import ScalarModel
from .weights import file_sha256

#: Length of one detokenize window in seconds (372 code frames, 744 latent frames).
WINDOW_SECONDS = 29.76


@dataclass(frozen=True)
class WindowPlan:
    """How ``detokenize`` tiles a code sequence into overlapping windows (all counts in code frames)."""

    window: int  # code frames per window (372)
    hop: int  # code frames between window starts (320)
    padded_length: int  # codes are repeated periodically up to this length
    starts: tuple[int, ...]

    @property
    def overlap(self) -> int:
        return self.window - self.hop

    @staticmethod
    def sizes(duration: float = WINDOW_SECONDS, codes_per_second: float = 12.5) -> tuple[int, int]:
        """(window, hop) in code frames for a window of ``duration`` seconds: (372, 320) by default."""
        window = int(duration * codes_per_second)
        hop = window // 93 * 80  # the released ratio: 320 of 372 frames
        if hop <= 0:
            raise ValueError(f"detokenize windows must be at least 93 code frames (7.44 s), got {duration} s")
        return window, hop

    @classmethod
    def for_length(cls, num_codes: int, duration: float = WINDOW_SECONDS, codes_per_second: float = 12.5) -> WindowPlan:
        window, hop = cls.sizes(duration, codes_per_second)
        overlap = window - hop
        length = max(num_codes, window)
        # Pad up to a whole number of hops after the first window. (The released code tests
        # this with twice the overlap, which for T = 104 + 320k returns too few samples.)
        if (length - overlap) % hop:
            length = math.ceil((length - overlap) / hop) * hop + overlap
        return cls(window, hop, length, tuple(range(0, length - hop + 1, hop)))


class _CrossFade:
    """Overlap-add of decoded windows into a preallocated ``[2, total]`` output, linear cross-fade.

    Window ``i`` starts at ``i * hop`` samples; its first ``window - hop`` samples fade in
    over the previous window's tail (weights in float64 as the released code, stored as float32).
    """

    def __init__(self, total: int, window: int, hop: int):
        self.out = torch.zeros(2, total)
        self.window, self.hop = window, hop
        self.fade_in = torch.linspace(0, 1, window - hop, dtype=torch.float64)

    def samples_used(self, i: int) -> int:
        """How many leading samples of window ``i`` land in the output (0 if none)."""
        return max(0, min(self.window, self.out.shape[1] - i * self.hop))

    def add(self, i: int, piece: torch.Tensor) -> None:
        s, n = i * self.hop, min(piece.shape[1], self.samples_used(i))
        if i == 0:
            self.out[:, :n] = piece[:, :n]
            return
        o = min(self.window - self.hop, n)
        fade = self.fade_in[:o]
        self.out[:, s : s + o] = self.out[:, s : s + o] * (1 - fade) + piece[:, :o] * fade
        self.out[:, s + o : s + n] = piece[:, o:n]


class HeartCodec(nn.Module):
    """The HeartCodec decoder: ``flow_matching`` (RVQ + DiT) and ``scalar_model`` (conv codec).

    Build it with :func:`heartcodec_lab.codec.load_codec`; the module tree and
    ``state_dict`` keys are those of the released checkpoints.
    """

    def __init__(self, config: HeartCodecConfig):
        super().__init__()
        self.config = config
        c = config
        self.flow_matching = FlowMatching(
            dim=c.dim,
            codebook_size=c.codebook_size,
            decay=c.decay,
            commitment_weight=c.commitment_weight,
            threshold_ema_dead_code=c.threshold_ema_dead_code,
            use_cosine_sim=c.use_cosine_sim,
            codebook_dim=c.codebook_dim,
            num_quantizers=c.num_quantizers,
            attention_head_dim=c.attention_head_dim,
            in_channels=c.in_channels,
            norm_type=c.norm_type,
            num_attention_heads=c.num_attention_heads,
            num_layers=c.num_layers,
            num_layers_2=c.num_layers_2,
            out_channels=c.out_channels,
        )
        self.scalar_model = ScalarModel(c)
        # Where the weights came from; set by the loader / default builder, read by describe().
        self.source: dict = {"kind": "unloaded", "path": None}
        self._hashes: dict[str, str] | None = None

    # -- numbers -------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def codes_per_second(self) -> float:
        return self.config.codes_per_second

    @property
    def latent_rate(self) -> float:
        return self.config.latent_rate

    @property
    def samples_per_code(self) -> int:
        """Output samples per code frame (3840 at 48 kHz)."""
        return 2 * self.config.hop_length

    @property
    def quantizer(self) -> nn.Module:
        """The shared ``ResidualVQ`` (``flow_matching.vq_embed``); a property so it is not registered twice."""
        return self.flow_matching.vq_embed

    @property
    def device(self) -> torch.device:
        return self.flow_matching.cond_feature_emb.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.scalar_model.decoder[0].bias.dtype

    # -- tokens <-> embeddings -----------------------------------------------------------
    def codes_to_embedding(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, 8, T]`` -> RVQ embedding ``[B, T, dim]``."""
        return codes_to_embedding(self.quantizer, codes)

    def quantize(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``[B, T, dim]`` -> ``(quantized [B, T, dim], codes [B, 8, T] int64)``; never updates the RVQ."""
        return nearest_codes(self.quantizer, features)

    # -- detokenize ----------------------------------------------------------------------
    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        nq, k = self.config.num_quantizers, self.config.codebook_size
        if codes.dim() != 2 or codes.shape[0] != nq or codes.shape[1] == 0:
            raise ValueError(f"detokenize expects codes [{nq}, T] with T > 0, got {tuple(codes.shape)}")
        if codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise ValueError(f"codes must be integers, got {codes.dtype}")
        lo, hi = int(codes.min()), int(codes.max())
        if lo < 0 or hi >= k:
            raise ValueError(f"codes must lie in [0, {k}), got values in [{lo}, {hi}] (strip EOS/padding first)")
        return codes.long()

    @torch.inference_mode()
    def iter_window_latents(
        self,
        codes: torch.Tensor,
        duration: float = WINDOW_SECONDS,
        num_steps: int = 10,
        guidance_scale: float = 1.25,
        disable_progress: bool = True,
        num_quantizers: int | None = None,
        solver: str = "euler",
        time_power: float = 1.0,
    ) -> Iterator[torch.Tensor]:
        """Codes ``[8, T]`` -> latents ``[1, 2 * window, 256]`` of each window in turn (global RNG).

        Only the previous window's in-context tail is kept between windows.
        ``num_quantizers=k`` conditions on the first k residual levels only (None: all 8).
        ``solver``: euler (released), midpoint, heun or ab2 (:mod:`~heartcodec_lab.codec.solvers`) on the
        time grid ``linspace(0, 1, num_steps + 1) ** time_power`` (1: the released uniform grid).
        """
        codes = self._check_codes(codes).to(self.device)
        plan = WindowPlan.for_length(codes.shape[-1], duration, self.codes_per_second)
        reps = math.ceil(plan.padded_length / codes.shape[-1])
        codes = codes.repeat(1, reps)[None, :, : plan.padded_length]  # [1, 8, L], periodic
        latent_frames = 2 * plan.window  # = int(duration * 25), the released count, for whole code frames
        channels = self.config.out_channels
        # Drawn on the CPU generator and never used (no in-context for window 1): kept so
        # that a seeded run reproduces the released code's random stream.
        prompt = torch.randn(1, latent_frames, channels, dtype=self.dtype).to(self.device)
        context_frames = 2 * plan.overlap
        n_context = 0
        for start in plan.starts:
            latents = self.flow_matching.inference_codes(
                [codes[:, :, start : start + plan.window]],
                prompt,
                latent_length=latent_frames,
                incontext_length=n_context,
                guidance_scale=guidance_scale,
                num_steps=num_steps,
                disable_progress=disable_progress,
                scenario="other_seg",
                num_quantizers=num_quantizers,
                solver=solver,
                time_power=time_power,
            )
            yield latents
            tail = latents[:, -context_frames:, :]
            fill = torch.randn(1, latent_frames - context_frames, channels, dtype=self.dtype).to(self.device)
            prompt, n_context = torch.cat([tail, fill], 1), context_frames
            del latents

    def generate_latents(
        self,
        codes: torch.Tensor,
        duration: float = WINDOW_SECONDS,
        num_steps: int = 10,
        guidance_scale: float = 1.25,
        disable_progress: bool = True,
        num_quantizers: int | None = None,
        solver: str = "euler",
        time_power: float = 1.0,
    ) -> list[torch.Tensor]:
        """Codes ``[8, T]`` -> one latent tensor ``[1, 2 * window, 256]`` per window (random: uses the global RNG).

        Holds every window; :meth:`detokenize` streams them instead. ``num_quantizers=k``
        conditions on the first k residual levels only (None: all 8).
        """
        return list(
            self.iter_window_latents(
                codes, duration, num_steps, guidance_scale, disable_progress, num_quantizers, solver, time_power
            )
        )

    @torch.inference_mode()
    def decode_latents(self, latents: torch.Tensor, num_samples: int | None = None) -> torch.Tensor:
        """Latents ``[1, T, 256]`` (left 128 | right 128) -> stereo audio ``[2, T * 1920]`` float32 on CPU.

        With ``num_samples``, only the first ``num_samples`` samples are decoded and returned
        (the decoder is causal apart from a 2-frame look-ahead, so they equal the whole's).
        """
        if latents.dim() != 3 or latents.shape[0] != 1 or latents.shape[2] != self.config.out_channels:
            raise ValueError(f"latents must be [1, T, {self.config.out_channels}], got {tuple(latents.shape)}")
        stereo = latents[0].reshape(latents.shape[1], 2, -1).permute(1, 2, 0)  # [2, 128, T]
        if num_samples is not None:
            frames = math.ceil(num_samples / self.config.hop_length)
            stereo = stereo[..., : frames + self.scalar_model.decoder[0].padding[0]]
        wav = self.scalar_model.decode(stereo.to(self.device, self.dtype))
        wav = wav[:, 0] if num_samples is None else wav[:, 0, :num_samples]
        return wav.float().cpu()

    @torch.inference_mode()
    def latents_to_wav(self, windows: list[torch.Tensor], duration: float = WINDOW_SECONDS) -> torch.Tensor:
        """Decode window latents and overlap-add them with a linear cross-fade -> ``[2, N]`` float32 (CPU)."""
        window, hop = (n * self.samples_per_code for n in WindowPlan.sizes(duration, self.codes_per_second))
        mix = _CrossFade(window + hop * (len(windows) - 1), window, hop)
        for i, latents in enumerate(windows):
            mix.add(i, self.decode_latents(latents)[:, :window])
        return mix.out

    @torch.inference_mode()
    def detokenize(
        self,
        codes: torch.Tensor,
        duration: float = WINDOW_SECONDS,
        num_steps: int = 10,
        guidance_scale: float = 1.25,
        disable_progress: bool = True,
        num_quantizers: int | None = None,
        solver: str = "euler",
        time_power: float = 1.0,
    ) -> torch.Tensor:
        """Codes ``[8, T]`` (int) -> stereo audio ``[2, T * 3840]`` float32 at 48 kHz, on the CPU.

        ``num_quantizers=k`` decodes from the first k of the 8 residual levels (a bitrate curve).

        Random (flow-matching noise from the global RNG): call ``torch.manual_seed``
        first for a reproducible result. Short inputs are repeated up to one window
        and the result cut back to ``T`` frames. Window by window: each window's
        latents are decoded (only as far as the output reaches, streamed by the
        ScalarModel) and cross-faded into the output before the next is generated, so
        memory is the weights plus one window's working set plus the output.
        """
        num_codes = codes.shape[-1] if codes.dim() == 2 else 0
        # Sample counts follow the code windows exactly (the released code derives them from the
        # duration separately, which agrees for 29.76 s but misaligns windows for other lengths).
        window, hop = (n * self.samples_per_code for n in WindowPlan.sizes(duration, self.codes_per_second))
        mix = _CrossFade(num_codes * self.samples_per_code, window, hop)
        windows = self.iter_window_latents(
            codes, duration, num_steps, guidance_scale, disable_progress, num_quantizers, solver, time_power
        )
        for i, latents in enumerate(windows):
            needed = mix.samples_used(i)
            if needed > 0:
                mix.add(i, self.decode_latents(latents, needed))
        return mix.out

    # -- precision -----------------------------------------------------------------------
    @property
    def precision(self) -> str:
        """``fp32`` or ``bf16``: what the flow-matching estimator runs in now."""
        return "bf16" if self.flow_matching.estimator.proj_in.ffn_2.weight.dtype == torch.bfloat16 else "fp32"

    def set_precision(self, name: str = "fp32"):
        """Apply the per-part precision policy (:mod:`~heartcodec_lab.codec.precision`); returns the choice.

        ``bf16`` casts the estimator's weights to bfloat16 in place (its matmuls run in bf16; the
        ODE state, the RVQ, the conditioning and the ScalarModel stay float32); ``auto`` does so
        only on hardware with fast bf16 where the fidelity was measured to pass; ``fp32`` keeps
        everything float32 (bit for bit today's results). Narrowing loses the float32 weights:
        going back to ``fp32`` afterwards needs the codec reloaded, and is refused.
        """
        from .precision import PrecisionChoice, resolve_precision

        if self.scalar_model.decoder[0].bias.dtype != torch.float32:  # load_codec(dtype=..., allow_low_precision)
            forced = self.flow_matching.estimator.proj_in.ffn_2.weight.dtype
            return PrecisionChoice("estimator", str(name), forced, "the codec was loaded with a forced low dtype")
        choice = resolve_precision(name, "estimator", self.device)
        if choice.dtype == torch.float32 and self.precision == "bf16":
            raise ValueError(
                "this codec's estimator weights were narrowed to bf16; reload the codec for fp32 "
                "(bf16 weights cannot be widened back bit for bit)"
            )
        if choice.dtype == torch.bfloat16:
            self.flow_matching.estimator.to(torch.bfloat16)
        self.precision_choice = choice
        return choice

    # -- identity ------------------------------------------------------------------------
    def describe(self) -> dict:
        """JSON-able identity: where the weights came from (path + sha256 of every weight file) and the config."""
        info = dict(self.source)
        files = info.pop("files", None)
        if files:
            if self._hashes is None:
                self._hashes = {Path(f).name: file_sha256(f) for f in files}
            info["sha256"] = dict(self._hashes)
        info["config"] = self.config.to_dict()
        return info
