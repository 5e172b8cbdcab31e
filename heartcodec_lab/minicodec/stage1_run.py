"""Stage-1 training run: build, initialise and train the ScalarModel autoencoder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from heartcodec_lab.codec.scalar_model import ScalarModel

from .config import mini_config
from .data import SegmentSampler, held_out_pieces, train_bank
from .loop import learning_rate, run_loop
from .quality import stage1_probe
from .stage1 import Stage1Loss, autoencode, lsuv_init, rescale_latents


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
    w_mel: float = 15.0
    w_stft: float = 1.0
    w_wave: float = 1.0
    w_usage: float = 1.0
    w_bound: float = 1.0
    w_sc: float = 1.0  # spectral convergence inside the STFT loss
    w_pitch: float = 0.0  # long-window log-STFT below 4 kHz ...
    pitch_from_step: int = 0  # ... from this step on
    w_readout: float = 2.0  # latents -> semitone log-spectrum readout (the encoder must carry pitch); 0 = off
    n_pieces: int = 48
    piece_seconds: float = 8.0
    seed: int = 0
    eval_every: int = 250
    eval_pieces: int = 2
    eval_seconds: float = 4.0


def build_stage1(s: Stage1Settings, initialise: bool = True) -> tuple[ScalarModel, SegmentSampler]:
    """Model and sampler; ``initialise=False`` skips the data-dependent init (a checkpoint will overwrite it)."""
    torch.manual_seed(s.seed)
    model = ScalarModel(mini_config(width=s.width))
    bank = train_bank(s.n_pieces, s.piece_seconds, seed=s.seed)
    sampler = SegmentSampler(bank, s.segment_frames * model.hop_length, s.batch, seed=s.seed + 1)
    probe = SegmentSampler(bank, s.segment_frames * model.hop_length, s.batch, seed=s.seed + 2)()
    if not initialise:
        pass
    elif s.init == "lsuv":
        lsuv_init(model, probe, s.init_latent_std)
    else:
        rescale_latents(model, probe, s.init_latent_std)
    return model, sampler


def train_stage1(s: Stage1Settings, run_dir: Path, progress: bool = True, max_seconds: float | None = None) -> dict:
    """Train (or resume) stage 1 in ``run_dir``; returns the last loss parts and the held-out probe."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "stage1_settings.json").write_text(json.dumps(asdict(s), indent=2))
    model, sampler = build_stage1(s, initialise=not (run_dir / "stage1.pt").is_file())
    model.train()
    with torch.random.fork_rng(devices=[]):  # the readout's init must not shift the training RNG stream
        torch.manual_seed(s.seed + 3)
        loss_fn = Stage1Loss(s.w_mel, s.w_stft, s.w_wave, s.w_usage, w_bound=s.w_bound, w_sc=s.w_sc,
                             w_readout=s.w_readout)
    modules = {"model": model} | ({"readout": loss_fn.readout} if loss_fn.readout is not None else {})
    params = [p for m in modules.values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=s.lr, betas=(0.8, 0.99), weight_decay=0.0)
    pieces = held_out_pieces(s.eval_pieces, s.eval_seconds) if s.eval_every else None

    def step(i: int):
        for g in opt.param_groups:
            g["lr"] = learning_rate(s, i)
        audio = sampler()
        recon, pre_tanh = autoencode(model, audio, "noise" if i < s.noise_steps else "round")
        loss_fn.w["pitch"] = s.w_pitch if i >= s.pitch_from_step else 0.0  # the pitch term is off until then
        return loss_fn(recon, audio, pre_tanh)

    def evaluate(done: int) -> dict:
        res = stage1_probe(model, pieces)
        with open(run_dir / "stage1_eval.jsonl", "a") as fh:
            fh.write(json.dumps({"step": done} | res) + "\n")
        return res

    last = run_loop("stage1", run_dir, s.steps, step, modules, opt, sampler,
                    eval_fn=evaluate if pieces is not None else None, eval_every=s.eval_every,
                    progress=progress, max_seconds=max_seconds)
    return {"loss": last, "model": model}
