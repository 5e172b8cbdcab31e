"""Stage-1 training run: build, initialise (or warm-start) and train the ScalarModel autoencoder.

Optionally adversarial (``w_adv > 0``): a :class:`~heartcodec_lab.minicodec.discriminators.MultiDiscriminator`
(multi-period + multi-resolution STFT) trains from ``disc_from_step``; the generator gets its
adversarial and feature-matching terms from ``adv_from_step`` (after the reconstruction warm-up).
Everything the next step depends on (both models, both optimizers and schedules, the sampler's
position, the RNG) is in ``<run>/stage1.pt``, so a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from heartcodec_lab.codec.scalar_model import ScalarModel
from heartcodec_lab.training.plain_loop import adamw_with_schedule, run_loop

from .config import mini_config
from .data import SegmentSampler, held_out_pieces, train_bank
from .discriminators import (
    MultiDiscriminator,
    discriminator_loss,
    feature_matching,
    generator_loss,
)
from .quality import scalar_roundtrip, stage1_probe, tone_fidelity
from .report import cents, harmonic_tone, pitch_hz
from .stage1 import Stage1Loss, autoencode, lsuv_init, rescale_latents, smooth_resampling_init


@dataclass
class Stage1Settings:
    width: int = 8
    steps: int = 8000
    schedule_steps: int = 0  # length of the cosine learning-rate schedule; 0 = steps
    batch: int = 8
    segment_frames: int = 12  # 12 x 1920 samples = 0.48 s
    lr: float = 1e-3
    warmup_steps: int = 100
    noise_steps: int = 200  # bottleneck = noise before this step, rounding after
    init_latent_std: float = 0.6
    init: str = "lsuv"  # or "rescale": default init, only the latent scale fixed
    resampling_init: str = "default"  # or "triangle": strided / transposed convs start as linear interpolation
    init_from: str = ""  # warm start: a codec folder (or a folder holding codec/) whose ScalarModel starts the run
    freeze_encoder: bool = False  # train the decoder only (the latents, hence stage 2's inputs, stay fixed)
    w_mel: float = 15.0
    w_stft: float = 1.0
    w_wave: float = 1.0
    w_usage: float = 1.0
    w_bound: float = 1.0
    w_sc: float = 1.0  # spectral convergence inside the STFT loss
    w_pitch: float = 0.0  # long-window log-STFT below 4 kHz ...
    pitch_from_step: int = 0  # ... from this step on
    w_phase: float = 0.0  # relative complex-STFT L1 below phase_max_hz (losses.ComplexSTFTLoss); 0 = off
    phase_max_hz: float = 1500.0
    w_phase_code: float = 0.0  # the first 80 latents must be the frame's compressed spectrum (losses.LatentPhaseCode)
    w_phase_readout: float = 0.0  # latents -> the frame's complex spectrum, 25-1000 Hz (the encoder must carry phase)
    w_readout: float = 2.0  # latents -> semitone log-spectrum readout (the encoder must carry pitch); 0 = off
    # adversarial training (off while w_adv == 0: no discriminator is built)
    w_adv: float = 0.0
    w_fm: float = 2.0  # feature matching, switched on with the adversarial term
    adv_objective: str = "hinge"  # or "lsgan"
    disc_from_step: int = 4000  # the discriminator trains from here ...
    adv_from_step: int = 4500  # ... and the generator hears it from here
    disc_lr: float = 2e-4
    disc_batch: int = 4  # the adversarial terms use the first rows of each batch (half the discriminator's CPU)
    disc_periods: list = field(default_factory=lambda: [2, 3, 5, 7, 11])
    disc_fft_sizes: list = field(default_factory=lambda: [512, 1024, 2048])
    disc_period_channels: list = field(default_factory=lambda: [8, 16, 32, 32])
    disc_stft_channels: int = 8
    bank: str = "classic"  # or "rich" (wider programs, low registers, pads, steady tones)
    n_pieces: int = 48
    piece_seconds: float = 8.0
    seed: int = 0
    checkpoint_every: int = 100
    checkpoint_minutes: float = 5.0
    eval_every: int = 250
    eval_pieces: int = 2
    eval_seconds: float = 4.0
    eval_tone_hz: list = field(default_factory=lambda: [110.0, 220.0, 440.0])


def init_weights(path: str) -> dict:
    """The ScalarModel weights of a codec folder (or of ``<path>/codec``), float32."""
    from heartcodec_lab.codec import load_codec

    folder = Path(path)
    if (folder / "codec").is_dir():
        folder = folder / "codec"
    return {k: v.float() for k, v in load_codec(folder).scalar_model.state_dict().items()}


def build_stage1(s: Stage1Settings, initialise: bool = True) -> tuple[ScalarModel, SegmentSampler]:
    """Model and sampler; ``initialise=False`` skips the data-dependent init (a checkpoint will overwrite it)."""
    torch.manual_seed(s.seed)
    model = ScalarModel(mini_config(width=s.width))
    bank = train_bank(s.n_pieces, s.piece_seconds, seed=s.seed, kind=s.bank)
    sampler = SegmentSampler(bank, s.segment_frames * model.hop_length, s.batch, seed=s.seed + 1)
    probe = SegmentSampler(bank, s.segment_frames * model.hop_length, s.batch, seed=s.seed + 2)()
    if not initialise:
        pass
    elif s.init_from:
        if s.resampling_init != "default":
            raise ValueError(
                f"resampling_init {s.resampling_init!r} initialises a new model; init_from warm-starts one"
            )
        model.load_state_dict(init_weights(s.init_from))
    else:
        if s.resampling_init == "triangle":
            smooth_resampling_init(model, s.seed)
        elif s.resampling_init != "default":
            raise ValueError(f"unknown resampling_init {s.resampling_init!r} (default | triangle)")
        if s.init == "lsuv":
            lsuv_init(model, probe, s.init_latent_std)
        else:
            rescale_latents(model, probe, s.init_latent_std)
    return model, sampler


def build_discriminator(s: Stage1Settings) -> MultiDiscriminator:
    return MultiDiscriminator(
        tuple(s.disc_periods), tuple(s.disc_fft_sizes), tuple(s.disc_period_channels), s.disc_stft_channels
    )


class Stage1Step:
    """One stage-1 step ``i -> (generator loss, parts)``; the discriminator's own update happens inside."""

    def __init__(self, s: Stage1Settings, model, sampler, loss_fn, disc=None, disc_opt=None):
        self.s, self.model, self.sampler, self.loss_fn = s, model, sampler, loss_fn
        self.disc, self.disc_opt = disc, disc_opt

    def __call__(self, i: int):
        s = self.s
        audio = self.sampler()
        recon, pre_tanh = autoencode(self.model, audio, "noise" if i < s.noise_steps else "round")
        self.loss_fn.w["pitch"] = s.w_pitch if i >= s.pitch_from_step else 0.0  # off until then
        total, parts = self.loss_fn(recon, audio, pre_tanh)
        if self.disc is None:
            return total, parts
        real_audio, fake_audio = audio[: s.disc_batch], recon[: s.disc_batch]
        if i >= s.disc_from_step:
            self.disc.requires_grad_(True)
            d_loss = discriminator_loss(self.disc(real_audio), self.disc(fake_audio.detach()), s.adv_objective)
            self.disc_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            torch.nn.utils.clip_grad_norm_(list(self.disc.parameters()), 1.0)
            self.disc_opt.step()
            parts["disc"] = d_loss.detach()
        if i >= s.adv_from_step:
            self.disc.requires_grad_(False)  # the generator's backward must not touch the discriminator
            with torch.no_grad():
                real = self.disc(real_audio)
            fake = self.disc(fake_audio)
            parts["adv"] = generator_loss(fake, s.adv_objective)
            parts["fm"] = feature_matching(real, fake)
            total = total + s.w_adv * parts["adv"] + s.w_fm * parts["fm"]
        return total, parts


def setup_stage1(s: Stage1Settings, resuming: bool):
    """(model, sampler, loss_fn, modules, optimizers, schedulers, step_fn) of a stage-1 run."""
    model, sampler = build_stage1(s, initialise=not resuming)
    model.train()
    if s.freeze_encoder:
        model.encoder.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):  # extra modules' init must not shift the training RNG stream
        torch.manual_seed(s.seed + 3)
        loss_fn = Stage1Loss(
            s.w_mel,
            s.w_stft,
            s.w_wave,
            s.w_usage,
            w_bound=s.w_bound,
            w_sc=s.w_sc,
            w_readout=0.0 if s.freeze_encoder else s.w_readout,
            w_phase=s.w_phase,
            phase_max_hz=s.phase_max_hz,
            w_phase_readout=0.0 if s.freeze_encoder else s.w_phase_readout,
            w_phase_code=0.0 if s.freeze_encoder else s.w_phase_code,
        )
        torch.manual_seed(s.seed + 4)
        disc = build_discriminator(s) if s.w_adv else None
    modules = {"model": model}
    for name in ("readout", "phase_readout"):  # trainable loss parts: optimised and checkpointed with the model
        if getattr(loss_fn, name) is not None:
            modules[name] = getattr(loss_fn, name)
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    total = s.schedule_steps or s.steps
    opt, sched = adamw_with_schedule(params, s.lr, s.warmup_steps, total, betas=(0.8, 0.99))
    optimizers, schedulers = {"main": opt}, {"main": sched}
    disc_opt = None
    if disc is not None:
        disc_opt, disc_sched = adamw_with_schedule(
            disc.parameters(), s.disc_lr, s.warmup_steps, total, betas=(0.8, 0.99)
        )
        modules["disc"] = disc
        optimizers["disc"], schedulers["disc"] = disc_opt, disc_sched
    step = Stage1Step(s, model, sampler, loss_fn, disc, disc_opt)
    return model, sampler, loss_fn, modules, optimizers, schedulers, step


def train_stage1(s: Stage1Settings, run_dir: Path, progress: bool = True, max_seconds: float | None = None) -> dict:
    """Train (or resume) stage 1 in ``run_dir``; returns the last loss parts and the model."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "stage1_settings.json").write_text(json.dumps(asdict(s), indent=2))
    model, sampler, _, modules, optimizers, schedulers, step = setup_stage1(s, (run_dir / "stage1.pt").is_file())
    pieces = held_out_pieces(s.eval_pieces, s.eval_seconds) if s.eval_every else None

    def evaluate(done: int) -> dict:
        res = stage1_probe(model, pieces)
        for hz in (110, 440):  # share of the output energy at a steady tone's note (quality.tone_fidelity)
            probe = tone_fidelity(model, hz)
            res[f"tone_share_{hz}hz"], res[f"tone_grid_share_{hz}hz"] = (
                probe["in_tone_share"],
                probe["frame_grid_share"],
            )
        for hz in s.eval_tone_hz:  # pyin pitch error of a harmonic tone through the round trip
            res[f"tone_cents_{hz:g}hz"] = cents(pitch_hz(scalar_roundtrip(model, harmonic_tone(hz))), hz)
        with open(run_dir / "stage1_eval.jsonl", "a") as fh:
            fh.write(json.dumps({"step": done} | res) + "\n")
        return res

    last = run_loop(
        "stage1",
        run_dir,
        s.steps,
        step,
        modules,
        optimizers,
        schedulers,
        sampler,
        eval_fn=evaluate if pieces is not None else None,
        eval_every=s.eval_every,
        checkpoint_every=s.checkpoint_every,
        checkpoint_minutes=s.checkpoint_minutes,
        progress=progress,
        max_seconds=max_seconds,
    )
    return {"loss": last, "model": model}
