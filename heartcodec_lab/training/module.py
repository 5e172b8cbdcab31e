"""LightningModule that trains an encoder projection against the frozen HeartCodec.

One step::

    audio [B, 2, S] --ScalarModel.encode (frozen, fp32)--> latents [B, 256, 2T]
      --projection (AMP)--> features [B, T, 512]
      --RVQ (frozen, fp32, straight-through)--> quantized [B, T, 512], codes [B, 8, T]
      --recipe: FlowMatching Euler steps -> ScalarModel.decode (reconstruction through the codec, the card's
        default; ``decode.through=adapter``: the community's throw-away adapter) / teacher targets (distill)-->
      LossSet(batch) -> total

The codec (and a teacher) are held *outside* the module's children: they are not in the
checkpoint, not in the optimizer, not wrapped by DDP, and Lightning's ``.train()`` never
reaches them; every step re-asserts eval mode and ``requires_grad=False``.

Optimization is manual so that a step whose loss or gradient norm is NaN/Inf is skipped
(parameters and optimizer state untouched) and counted, consistently on every rank.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import lightning.pytorch as pl
import torch
from torch import nn

from heartcodec_lab.codec.quantizer import straight_through
from heartcodec_lab.codec.runtime import freeze
from heartcodec_lab.codec.usage import codebook_usage
from heartcodec_lab.losses.consistency import perturbed_features
from heartcodec_lab.training.adapter import LatentAdapter, decode_stereo
from heartcodec_lab.training.decode_through import DecodeThrough
from heartcodec_lab.training.schedule import WarmupCosine
from heartcodec_lab.training.teacher import teacher_targets


def _fp32(device: torch.device):
    """A region where autocast is off: the frozen codec and the losses always run in float32."""
    if device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, enabled=False)
    return nullcontext()


class ProjectionTrainingModule(pl.LightningModule):
    """Trains ``projection`` (and ``adapter``, for the reconstruction recipe) with ``losses``.

    Args:
        codec: the frozen HeartCodec (``scalar_model``, ``quantize``, ``quantizer``, ``config``).
        projection: the trainable projection (``kind``, ``config``).
        losses: a :class:`heartcodec_lab.losses.LossSet`; its ``requires`` decides what a step computes.
        teacher: an :class:`AudioEncoder` for distillation targets, or None.
        adapter: a :class:`LatentAdapter` (when some loss reads ``recon`` and ``decode.through`` is
            ``adapter``); built if missing.
        decode: how ``recon`` is made: ``{through: decoder | adapter, **DecodeThrough options}``;
            ``decoder`` (default) decodes through the frozen FlowMatching + ScalarModel
            (:class:`heartcodec_lab.training.decode_through.DecodeThrough`).
        optim: ``{lr, betas, weight_decay, warmup_steps, total_steps (None: trainer.max_steps), min_lr_ratio}``.
        grad_clip: max total gradient norm (0 or less: no clipping; the norm is still logged).
        seed: per-step noise (flow loss, dropout) is seeded from (seed, batch number, rank), so resume is exact.
        max_consecutive_skips: abort after this many skipped steps in a row (the data or the setup is broken).
        log_codes_every: steps between per-quantizer codebook usage logs.
        run_info: plain JSON-able dict stored in checkpoints (config, codec identity) for export.
    """

    def __init__(
        self,
        codec: nn.Module,
        projection: nn.Module,
        losses: nn.Module,
        teacher: nn.Module | None = None,
        adapter: nn.Module | None = None,
        optim: dict | None = None,
        grad_clip: float = 0.5,
        seed: int = 0,
        max_consecutive_skips: int = 50,
        log_codes_every: int = 50,
        run_info: dict | None = None,
        decode: dict | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.projection = projection
        self.losses = losses
        self.needs = set(losses.requires)
        decode = dict(decode or {})
        through = decode.pop("through", "decoder")
        if through not in ("decoder", "adapter"):
            raise ValueError(f"decode.through must be 'decoder' or 'adapter', got {through!r}")
        use_adapter = "recon" in self.needs and through == "adapter"
        if use_adapter and adapter is None:
            cfg = codec.config
            adapter = LatentAdapter(in_dim=cfg.dim, latent_dim=cfg.latent_hidden_dim)
        self.adapter = adapter if use_adapter else None
        self.decode_through = DecodeThrough(codec, **decode) if "recon" in self.needs and not use_adapter else None
        if self.needs & {"teacher_features", "teacher_codes"} and teacher is None:
            raise ValueError(
                f"losses need {sorted(self.needs & {'teacher_features', 'teacher_codes'})} but no teacher is configured"
            )
        freeze(codec)
        freeze(teacher)
        # a plain dict attribute: nn.Module does not register what is inside it
        self._frozen = {"codec": codec, "teacher": teacher}
        self.optim_cfg = {
            "lr": 3e-4,
            "betas": (0.9, 0.99),
            "weight_decay": 0.01,
            "warmup_steps": 100,
            "total_steps": None,
            "min_lr_ratio": 0.1,
            **(optim or {}),
        }
        self.grad_clip = float(grad_clip)
        self.seed = int(seed)
        self.max_consecutive_skips = int(max_consecutive_skips)
        self.log_codes_every = max(1, int(log_codes_every))
        self.run_info = dict(run_info or {})
        # progress counters; saved in checkpoints (see on_save_checkpoint)
        self.batches_seen = 0
        self.skipped_steps = 0
        self.consecutive_skips = 0
        self._skip_reason: str | None = None
        self._last_grad_norm = torch.tensor(float("nan"))
        cfg = codec.config
        self._code_counts = torch.zeros(cfg.num_quantizers, cfg.codebook_size, dtype=torch.long)

    # -- the frozen parts -------------------------------------------------------------
    @property
    def codec(self) -> nn.Module:
        return self._frozen["codec"]

    @property
    def teacher(self) -> nn.Module | None:
        return self._frozen["teacher"]

    def guard_frozen(self) -> None:
        """Codec and teacher on this module's device, in eval mode, without gradients."""
        for m in self._frozen.values():
            if m is None:
                continue
            p = next(m.parameters(), None)
            if p is not None and p.device != self.device:
                m.to(self.device)
            if m.training:
                m.eval()
            if p is not None and any(q.requires_grad for q in m.parameters()):
                m.requires_grad_(False)
        if self._code_counts.device != self.device:
            self._code_counts = self._code_counts.to(self.device)

    def on_fit_start(self) -> None:
        self.guard_frozen()

    # -- the forward pass shared by training, validation and export --------------------
    @torch.no_grad()
    def latents(self, audio: torch.Tensor) -> torch.Tensor:
        """audio ``[B, 2, S]`` -> ScalarModel latents ``[B, 256, S / 1920]`` = cat(left, right), float32."""
        b, c, s = audio.shape
        with _fp32(self.device):
            lat = self.codec.scalar_model.encode(audio.reshape(b * c, 1, s).float())
        return lat.reshape(b, c * lat.shape[1], lat.shape[2])

    def forward_batch(self, audio: torch.Tensor, latents: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """audio ``[B, 2, S]`` -> the loss batch (keys of :mod:`heartcodec_lab.losses.base`) this recipe needs.

        ``latents`` ``[B, 256, S / 1920]``: the ScalarModel latents of ``audio`` when the data
        pipeline already has them (the frozen encoder is deterministic); computed otherwise.
        """
        latents = self.latents(audio) if latents is None else latents.float()
        features = self.projection(latents).float()  # the projection may run under AMP
        with _fp32(self.device):
            quantized, codes = self.codec.quantize(features.detach())
            quantized_st = straight_through(self.codec.quantizer, features, quantized)
            batch = {
                "audio": audio.float(),
                "latents": latents,
                "features": features,
                "quantized": quantized_st,
                "codes": codes,
            }
            if self.adapter is not None:
                batch["recon"] = decode_stereo(self.codec.scalar_model, self.adapter(quantized_st))
            elif self.decode_through is not None:
                recon, first, chans = self.decode_through(quantized_st)
                batch["recon"], batch["audio"] = recon, batch["audio"][:, chans, first : first + recon.shape[-1]]
            if self.teacher is not None and self.needs & {"teacher_features", "teacher_codes"}:
                batch.update(teacher_targets(self.teacher, self.codec, audio, latents))
        if "perturbed_features" in self.needs:  # the stability term (losses/consistency.py)
            batch["perturbed_features"] = perturbed_features(
                self.losses, audio.float(), lambda a: self.projection(self.latents(a))
            )
        return batch

    @torch.no_grad()
    def tokens(self, audio: torch.Tensor) -> torch.Tensor:
        """audio ``[B, 2, S]`` at 48 kHz -> codes ``[B, 8, S / 3840]`` with the current projection."""
        features = self.projection(self.latents(audio)).float()
        with _fp32(self.device):
            return self.codec.quantize(features)[1]

    # -- optimization -------------------------------------------------------------------
    def trainable_parameters(self) -> list[nn.Parameter]:
        """The projection's (and the adapter's) parameters; loss modules hold no trainable state."""
        mods = [self.projection] + ([self.adapter] if self.adapter is not None else [])
        return [p for m in mods for p in m.parameters() if p.requires_grad]

    def configure_optimizers(self):
        o = self.optim_cfg
        opt = torch.optim.AdamW(
            self.trainable_parameters(), lr=o["lr"], betas=tuple(o["betas"]), weight_decay=o["weight_decay"]
        )
        total = o["total_steps"] or (
            self.trainer.max_steps if self.trainer.max_steps > 0 else self.trainer.estimated_stepping_batches
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(o["warmup_steps"], int(total), o["min_lr_ratio"]))
        return [opt], [{"scheduler": sched, "interval": "step"}]

    def _rank_seed(self) -> int:
        world, rank = self.trainer.world_size, self.trainer.global_rank
        return (self.seed * 1_000_003 + self.batches_seen * world + rank) % (2**63 - 1)

    def _any_rank(self, flag: bool) -> bool:
        """True when ``flag`` is True on any rank (so every rank takes the same decision)."""
        if self.trainer.world_size == 1:
            return flag
        t = torch.tensor(float(flag), device=self.device)
        return bool(self.trainer.strategy.reduce(t, reduce_op="sum") > 0)

    def training_step(self, batch: dict, batch_idx: int):
        self.guard_frozen()
        torch.manual_seed(self._rank_seed())
        self.batches_seen += 1
        opt, sched = self.optimizers(), self.lr_schedulers()
        out = self.forward_batch(batch["audio"], batch.get("latents"))
        with _fp32(self.device):
            total, logs = self.losses(out)
        self._skip_reason = "loss" if self._any_rank(not bool(torch.isfinite(total))) else None
        opt.zero_grad(set_to_none=True)
        if self._skip_reason is None:
            self.manual_backward(total)
        else:
            # a zero-valued surrogate keeps DDP's gradient all-reduce and AMP's scaler in step on
            # every rank; on_before_optimizer_step then drops the gradients, so nothing changes
            self.manual_backward(sum(p.sum() * 0.0 for p in self.trainable_parameters()))
        opt.step()  # on_before_optimizer_step clips, checks and maybe skips
        if self._skip_reason is None:
            sched.step()
            self.consecutive_skips = 0
        else:
            self.skipped_steps += 1
            self.consecutive_skips += 1
            if self.consecutive_skips >= self.max_consecutive_skips:
                raise RuntimeError(
                    f"{self.consecutive_skips} training steps in a row had a non-finite "
                    f"{self._skip_reason}; stopping (check the data and the learning rate)"
                )
        self._log_train(logs, out["codes"])
        self._log_agreement(out, batch["audio"])
        return total.detach()

    def on_before_optimizer_step(self, optimizer) -> None:
        """Gradients are unscaled here (AMP): measure, clip, and drop them if the step must be skipped."""
        params = self.trainable_parameters()
        max_norm = self.grad_clip if self.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm=max_norm)
        self._last_grad_norm = norm.detach()
        if self._skip_reason is None and not bool(torch.isfinite(norm)):
            self._skip_reason = "gradient"
        if self._skip_reason is not None:
            for p in params:
                p.grad = None  # AdamW leaves parameters without gradients (and their state) alone

    # -- logging ------------------------------------------------------------------------
    def _log_train(self, logs: dict, codes: torch.Tensor) -> None:
        n = codes.shape[0]
        scalars = {f"train/{k}": v for k, v in logs.items()}
        scalars["train/lr"] = float(self.lr_schedulers().get_last_lr()[0])
        scalars["train/grad_norm"] = self._last_grad_norm.float()
        scalars["train/skipped_steps"] = float(self.skipped_steps)
        self.log_dict(scalars, on_step=True, on_epoch=False, batch_size=n)
        self.log("train/loss", logs["loss/total"], on_step=True, prog_bar=True, batch_size=n, logger=False)
        self._count_codes(codes)
        if self.batches_seen % self.log_codes_every == 0:
            self.log_dict(self.codebook_usage(prefix="train/codes"), on_step=True, on_epoch=False, batch_size=n)
            self._code_counts.zero_()

    def _log_agreement(self, out: dict, audio: torch.Tensor) -> None:
        """Per-level agreement with the teacher's codes on this batch (``train/agree_q<i>_pct``).

        Every step when the losses already hold the teacher's codes; otherwise, when a teacher is
        configured only to be measured against, every ``log_codes_every`` steps.
        """
        codes = out.get("teacher_codes")
        if codes is None:
            if self.teacher is None or self.batches_seen % self.log_codes_every:
                return
            with _fp32(self.device):
                codes = teacher_targets(self.teacher, self.codec, audio, out["latents"])["teacher_codes"]
        match = (out["codes"] == codes).float().mean(dim=(0, 2)) * 100.0
        self.log_dict(
            {f"train/agree_q{i}_pct": m for i, m in enumerate(match)},
            on_step=True,
            on_epoch=False,
            batch_size=codes.shape[0],
        )

    def _count_codes(self, codes: torch.Tensor) -> None:
        q, k = self._code_counts.shape
        flat = codes.detach().transpose(0, 1).reshape(q, -1) + torch.arange(q, device=codes.device)[:, None] * k
        self._code_counts += (
            torch.bincount(flat.reshape(-1), minlength=q * k).reshape(q, k).to(self._code_counts.device)
        )

    def codebook_usage(self, prefix: str) -> dict[str, float]:
        """Per quantizer: used codes and perplexity (2^entropy in bits) of the counts since the last log."""
        usage = codebook_usage(self._code_counts.cpu().numpy())
        out = {}
        for i, q in enumerate(usage):
            out[f"{prefix}/used_q{i}"] = float(q["used_codes"])
            out[f"{prefix}/perplexity_q{i}"] = float(q["perplexity"])
        return out

    # -- validation -----------------------------------------------------------------------
    def validation_step(self, batch: dict, batch_idx: int):
        self.guard_frozen()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            # the same noise for every validation pass, so held-out losses are comparable
            torch.manual_seed(self.seed + 7919 * batch_idx)
            out = self.forward_batch(batch["audio"], batch.get("latents"))
            with _fp32(self.device):
                _, logs = self.losses(out)
        n = batch["audio"].shape[0]
        scalars = {f"val/{k}": v for k, v in logs.items()}
        if "teacher_codes" in out:
            match = (out["codes"] == out["teacher_codes"]).float().mean(dim=(0, 2)) * 100.0
            for i, m in enumerate(match):
                scalars[f"val/agree_q{i}_pct"] = m
        self.log_dict(scalars, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)

    # -- checkpoints ----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # plain types only, so the checkpoint loads with torch.load(weights_only=True)
        checkpoint["heartcodec_lab"] = {
            "batches_seen": int(self.batches_seen),
            "skipped_steps": int(self.skipped_steps),
            "projection": {"kind": self.projection.kind, "kwargs": dict(self.projection.config)},
            "run_info": self.run_info,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("heartcodec_lab", {})
        self.batches_seen = int(state.get("batches_seen", 0))
        self.skipped_steps = int(state.get("skipped_steps", 0))
