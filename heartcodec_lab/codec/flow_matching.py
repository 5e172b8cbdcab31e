"""Flow-matching decoder of HeartCodec: tokens -> 25 Hz latents.

Codes ``[B, 8, T]`` at 12.5 Hz are turned into a condition ``mu [B, 2T, dim]``
(residual-VQ embedding -> ``cond_feature_emb`` -> nearest upsampling x2), and a
fixed-step ODE solver (Euler by default, :mod:`~heartcodec_lab.codec.solvers`) integrates the velocity predicted by
:class:`~heartcodec_lab.codec.estimator.FlowEstimator` from Gaussian noise
(t = 0) to latents (t = 1), with classifier-free guidance against a zero
condition.

Flow convention (implied by the solver's treatment of in-context frames), with
``SIGMA_MIN = 1e-6``::

    x_t      = (1 - (1 - SIGMA_MIN) t) * noise + t * x1
    velocity = x1 - (1 - SIGMA_MIN) * noise          (d x_t / d t)

The estimator input is ``cat(x_t, incontext_x, mu)`` along channels, where
``incontext_x`` holds clean latents for the leading in-context frames (a prompt
the solution must continue) and zeros elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from rich.progress import track
from torch import nn
from vector_quantize_pytorch import ResidualVQ

from .estimator import FlowEstimator
from .solvers import check_solver, integrate

#: Residual noise scale at t = 1 of the flow path.
SIGMA_MIN = 1e-6


def interpolate_path(noise: torch.Tensor, x1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Point ``x_t`` of the flow path between ``noise`` (t=0) and ``x1`` (t=1).

    ``t`` is a scalar or broadcastable to ``noise`` (e.g. ``[B, 1, 1]``).
    """
    return (1 - (1 - SIGMA_MIN) * t) * noise + t * x1


def target_velocity(noise: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Velocity of the flow path, constant in t: ``x1 - (1 - SIGMA_MIN) noise``."""
    return x1 - (1 - SIGMA_MIN) * noise


class FlowMatching(nn.Module):
    """RVQ conditioning + DiT velocity estimator + Euler solver.

    The RVQ arguments build the vector-quantize-pytorch ``ResidualVQ`` whose
    codebooks define the tokens; the DiT arguments build the estimator. The RVQ is
    kept in eval mode whatever ``train()`` is called with, so its EMA codebooks
    are never updated by this toolkit.
    """

    def __init__(
        self,
        dim: int = 512,
        codebook_size: int = 8192,
        decay: float = 0.9,
        commitment_weight: float = 1.0,
        threshold_ema_dead_code: int = 2,
        use_cosine_sim: bool = False,
        codebook_dim: int = 32,
        num_quantizers: int = 8,
        attention_head_dim: int = 64,
        in_channels: int = 1024,
        norm_type: str = "ada_norm_single",
        num_attention_heads: int = 24,
        num_layers: int = 24,
        num_layers_2: int = 6,
        out_channels: int = 256,
    ):
        super().__init__()
        if in_channels != 2 * out_channels + dim:
            raise ValueError(
                f"in_channels ({in_channels}) must equal 2 * out_channels + dim = {2 * out_channels + dim}"
            )
        self.vq_embed = ResidualVQ(
            dim=dim,
            codebook_size=codebook_size,
            decay=decay,
            commitment_weight=commitment_weight,
            threshold_ema_dead_code=threshold_ema_dead_code,
            use_cosine_sim=use_cosine_sim,
            codebook_dim=codebook_dim,
            num_quantizers=num_quantizers,
        )
        self.cond_feature_emb = nn.Linear(dim, dim)
        self.zero_cond_embedding1 = nn.Parameter(torch.randn(dim))
        self.estimator = FlowEstimator(
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            num_layers=num_layers,
            num_layers_2=num_layers_2,
            norm_type=norm_type,
        )
        self.latent_dim = out_channels
        self.num_quantizers = num_quantizers
        self.codebook_size = codebook_size
        self.vq_embed.eval()

    def train(self, mode: bool = True) -> FlowMatching:
        super().train(mode)
        self.vq_embed.eval()  # EMA codebook updates would silently change the tokens' meaning
        return self

    # ------------------------------------------------------------------ conditioning
    def condition_from_codes(self, codes: torch.Tensor, num_quantizers: int | None = None) -> torch.Tensor:
        """Codes ``[B, 8, T]`` (int64) -> condition ``mu [B, 2T, dim]`` at the 25 Hz latent rate.

        ``num_quantizers=k`` keeps only the first k residual levels: the sum of their code
        vectors goes through ``project_out`` (what a k-level RVQ would output; for codebook-depth
        curves). None or 8 is the full embedding.
        """
        if codes.dim() != 3 or codes.shape[1] != self.num_quantizers:
            raise ValueError(f"codes must be [B, {self.num_quantizers}, T], got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(
                f"codes must lie in [0, {self.codebook_size}), got [{int(codes.min())}, {int(codes.max())}]"
            )
        indices = codes.long().transpose(1, 2)
        k = self.num_quantizers if num_quantizers is None else int(num_quantizers)
        if not 1 <= k <= self.num_quantizers:
            raise ValueError(f"num_quantizers must be in 1..{self.num_quantizers}, got {num_quantizers}")
        if k == self.num_quantizers:
            embedding = self.vq_embed.get_output_from_indices(indices)
        else:
            per_level = self.vq_embed.get_codes_from_indices(indices)  # [8, B, T, codebook_dim]
            embedding = self.vq_embed.project_out(per_level[:k].sum(0))
        return self.embedding_to_condition(embedding)

    def embedding_to_condition(self, embedding: torch.Tensor) -> torch.Tensor:
        """Quantized embedding ``[B, T, dim]`` (12.5 Hz) -> ``mu [B, 2T, dim]`` (25 Hz).

        Differentiable: the decoder-consistent loss feeds a projection's
        straight-through quantized output through here.
        """
        weight = self.cond_feature_emb.weight
        # The RVQ stays float32 even when the rest is cast to a lower precision.
        return self.cond_feature_emb(embedding.to(weight.dtype)).repeat_interleave(2, dim=1)  # nearest x2

    # ------------------------------------------------------------------ velocity
    def velocity(
        self, x_t: torch.Tensor, incontext_x: torch.Tensor, mu: torch.Tensor, t: torch.Tensor | float
    ) -> torch.Tensor:
        """Predicted velocity ``[B, T, out]`` at ``x_t [B, T, out]`` and time ``t`` (scalar or ``[B]``).

        Regress it on :func:`target_velocity` with ``x_t`` from :func:`interpolate_path`
        for the conditional flow-matching loss.
        """
        hidden = torch.cat([x_t, incontext_x, mu], dim=2)
        weight = next(self.estimator.parameters(), None)
        dtype = hidden.dtype if weight is None else weight.dtype  # bf16 under the bf16 precision policy
        # the state and its velocity keep their own dtype (float32): only the estimator runs narrower
        return self.estimator(hidden.to(dtype), timestep=t).to(x_t.dtype)

    def guided_velocity(self, x, incontext_x, mu, t, guidance_scale: float) -> torch.Tensor:
        """Classifier-free guidance: ``u + s (c - u)``, u with ``mu`` zeroed; one batched call."""
        if guidance_scale <= 1.0:
            return self.velocity(x, incontext_x, mu, t)
        both = self.velocity(
            torch.cat([x, x], 0),
            torch.cat([incontext_x, incontext_x], 0),
            torch.cat([torch.zeros_like(mu), mu], 0),
            t,
        )
        uncond, cond = both.chunk(2, dim=0)
        return uncond + guidance_scale * (cond - uncond)

    # ------------------------------------------------------------------ sampling
    def solve_euler(
        self,
        x: torch.Tensor,
        incontext_x: torch.Tensor,
        incontext_length: int | torch.Tensor,
        t_span: torch.Tensor,
        mu: torch.Tensor,
        guidance_scale: float,
        disable_progress: bool = True,
        solver: str = "euler",
    ) -> torch.Tensor:
        """Integrate the flow from noise ``x [B, T, out]`` over ``t_span [n+1]``; returns ``[B, T, out]``.

        Before every velocity evaluation, the first ``incontext_length`` frames of the
        state are put back on the path from their noise to ``incontext_x`` at that time.
        Guidance is used when ``guidance_scale > 1``. ``solver``: ``euler`` (the released
        solver, bit for bit), ``midpoint`` or ``heun`` (:mod:`~heartcodec_lab.codec.solvers`:
        two guided estimator calls per step). Unlike the original solver, ``x`` is not
        modified in place.
        """
        n = int(incontext_length)
        noise = x

        def pin(state: torch.Tensor, t: torch.Tensor) -> None:
            state[:, :n] = interpolate_path(noise[:, :n], incontext_x[:, :n], t)

        steps = range(1, len(t_span))
        if not disable_progress:
            steps = track(steps, description="flow-matching steps")
        return integrate(
            lambda state, t: self.guided_velocity(state, incontext_x, mu, t, guidance_scale),
            x,
            t_span,
            solver,
            pin,
            steps,
        )

    @torch.inference_mode()
    def inference_codes(
        self,
        codes_list: Sequence[torch.Tensor],
        true_latents: torch.Tensor,
        latent_length: int,
        incontext_length: int,
        guidance_scale: float,
        num_steps: int,
        disable_progress: bool = True,
        scenario: str = "other_seg",
        num_quantizers: int | None = None,
        solver: str = "euler",
        time_power: float = 1.0,
    ) -> torch.Tensor:
        """Latents ``[B, 2T, out]`` for one window of codes (the first ``num_quantizers`` levels; None: all).

        Args:
            codes_list: sequence whose first item is the codes ``[B, 8, T]``.
            true_latents: ``[B, 2T, out]``; its first ``incontext_length`` frames are
                the clean in-context prompt (only used with ``scenario="other_seg"``).
            latent_length: frames that get the code condition; later frames get
                the learned ``zero_cond_embedding1``.
            incontext_length: in-context frames (``scenario="other_seg"``).
            guidance_scale, num_steps, solver: ODE solver settings (``solver``: euler, midpoint, heun, ab2).
            time_power: the solver's time grid is ``linspace(0, 1, num_steps + 1) ** time_power``
                (1: uniform, the released grid; below 1: smaller steps towards t = 1, the data end).

        Random draws: exactly one ``randn(B, 2T, out)`` (initial noise) on the
        default generator, the order the parity fixtures rely on.
        """
        if scenario not in ("other_seg", "start_seg"):
            raise ValueError(f"scenario must be 'other_seg' or 'start_seg', got {scenario!r}")
        if num_steps < 1:
            raise ValueError(f"num_steps must be at least 1, got {num_steps}")
        check_solver(solver)
        if not time_power > 0:
            raise ValueError(f"time_power must be positive, got {time_power}")
        device, dtype = true_latents.device, true_latents.dtype
        mu = self.condition_from_codes(codes_list[0].to(device), num_quantizers)
        batch, frames, _ = mu.shape
        if true_latents.shape != (batch, frames, self.latent_dim):
            raise ValueError(
                f"true_latents must be [{batch}, {frames}, {self.latent_dim}] (2 latent frames per code frame), "
                f"got {tuple(true_latents.shape)}"
            )
        noise = torch.randn(batch, frames, self.latent_dim, device=device, dtype=dtype)

        # Frame roles: [0, n_context) in-context prompt, then code-conditioned frames up
        # to latent_length, then frames with the learned "no condition" embedding.
        frame_idx = torch.arange(frames, device=device)
        n_context = min(int(incontext_length), frames) if scenario == "other_seg" else 0
        in_context = frame_idx < n_context
        conditioned = frame_idx < max(int(latent_length), n_context)

        mu = torch.where(conditioned[None, :, None], mu, self.zero_cond_embedding1.to(mu.dtype))
        incontext_x = true_latents * in_context[None, :, None].to(dtype)
        t_span = torch.linspace(0, 1, num_steps + 1, device=device)
        if time_power != 1.0:
            t_span = t_span**time_power
        latents = self.solve_euler(
            noise, incontext_x, n_context, t_span, mu.to(dtype), guidance_scale, disable_progress, solver
        )
        latents[:, :n_context] = incontext_x[:, :n_context]
        return latents
