"""Probe the stability / agreement trade-off cheaply: train projections on cached ScalarModel latents.

The ScalarModel encoder is frozen and deterministic, and it is most of a training step's cost, so this
probe encodes a bank of synthetic training pieces once as they are and ``--perturbations`` times after
the consistency term's own random changes (:func:`heartcodec_lab.losses.consistency.perturb`: sub-frame
delay, gain, noise), then trains conv1d projections (the true encoder's sizes) with the toolkit's own loss
modules (``distill_feature`` + ``distill_rvq_input`` against the miniature's true encoder, plus
``consistency`` with each ``--weights`` value) on those cached latents: seconds per configuration instead
of CPU-hours. Results go to ``<out>/probe_<init>.json``; each projection is exported to ``<out>/<name>/`` (``benchmarks/stability_table.py`` then
scores it through ``detokenize``) and scored here on held-out pieces: agreement with the true encoder and
self-agreement under a one-sample delay and -60 dB noise.

    python benchmarks/stability_probe.py [--init teacher scratch] [--weights 0 1 3] [--steps 1500]
        [--train-pieces 32 --piece-seconds 4 --perturbations 2] [--out outputs/stability_probe]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from heartcodec_lab.evaluate.metrics.agreement import level_agreement
from heartcodec_lab.evaluate.stability import measure_stability
from heartcodec_lab.minicodec.scoring import load_miniature

REPO = Path(__file__).resolve().parents[1]
SR = 48000


@torch.no_grad()
def latents_of(encoder, audio: torch.Tensor, batch: int = 4) -> torch.Tensor:
    return torch.cat([encoder.latents(audio[i : i + batch]) for i in range(0, len(audio), batch)])


def train_one(codec, teacher, lat, lat_p, feats_t, init: str, weight: float, a) -> torch.nn.Module:
    from heartcodec_lab.encoders.projection import default_projection
    from heartcodec_lab.losses import build_losses
    from heartcodec_lab.training.schedule import WarmupCosine

    student = default_projection(codec, "conv1d", seed=a.seed, **dict(teacher.projection.config))
    if init == "teacher":
        student.load_state_dict(teacher.projection.state_dict())
    spec = {"distill_feature": {"weight": 1.0, "mode": "mse"}, "distill_rvq_input": {"weight": 1.0}}
    if weight > 0:
        spec["consistency"] = {"weight": weight}
    losses = build_losses(spec, codec)
    lr = a.lr_teacher if init == "teacher" else a.lr_scratch
    opt = torch.optim.AdamW(student.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(max(1, a.steps // 10), a.steps, 0.1))
    gen = torch.Generator().manual_seed(a.seed)
    n = lat.shape[0]
    for step in range(a.steps):
        idx = torch.randperm(n, generator=gen)[: a.batch]
        batch = {"features": student(lat[idx]), "teacher_features": feats_t[idx]}
        if weight > 0:
            k = torch.randint(lat_p.shape[0], (len(idx),), generator=gen)
            batch["perturbed_features"] = student(lat_p[k, idx])
        total, logs = losses(batch)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 0.5)
        opt.step()
        sched.step()
        if step % max(1, a.steps // 5) == 0 or step == a.steps - 1:
            print(
                f"  step {step}: " + ", ".join(f"{k.split('/', 1)[1]}={float(v):.4g}" for k, v in logs.items()),
                flush=True,
            )
    return student.eval()


def main(argv=None) -> dict:
    from heartcodec_lab.encoders.projection import ProjectionEncoder, save_projection
    from heartcodec_lab.losses.consistency import perturb
    from heartcodec_lab.minicodec.data import held_out_pieces, train_bank

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", nargs="+", default=["teacher"], choices=["teacher", "scratch"])
    p.add_argument("--weights", nargs="+", type=float, default=[0.0, 1.0, 3.0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr-teacher", type=float, default=1e-4)
    p.add_argument("--lr-scratch", type=float, default=1e-3)
    p.add_argument("--train-pieces", type=int, default=32)
    p.add_argument("--piece-seconds", type=float, default=4.0)
    p.add_argument("--perturbations", type=int, default=2)
    p.add_argument("--pieces", type=int, default=4, help="held-out pieces")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO / "outputs" / "stability_probe")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    cpu0 = time.process_time()
    codec, truth = load_miniature()
    cache = a.out / f"latents_{a.train_pieces}x{a.piece_seconds:g}s_{a.perturbations}p_seed{a.seed}.pt"
    if cache.is_file():
        lat, lat_p = torch.load(cache, weights_only=True).values()
    else:
        bank = train_bank(a.train_pieces, a.piece_seconds, seed=a.seed)
        gen = torch.Generator().manual_seed(a.seed + 1)
        lat = latents_of(truth, bank)
        lat_p = torch.stack([latents_of(truth, perturb(bank, generator=gen)) for _ in range(a.perturbations)])
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"lat": lat, "lat_p": lat_p}, cache)
    with torch.no_grad():
        feats_t = truth.projection(lat).float()
    held = list(held_out_pieces(a.pieces, a.seconds))
    truth_tokens = [truth.tokenize(x, SR) for x in held]
    print(
        f"cached latents: {tuple(lat.shape)} + {tuple(lat_p.shape)} in {time.process_time() - cpu0:.0f} CPU s",
        flush=True,
    )
    results = {}
    for init in a.init:
        for weight in a.weights:
            name = f"{init}_w{weight:g}"
            t0 = time.process_time()
            print(f"{name}:", flush=True)
            student = train_one(codec, truth, lat, lat_p, feats_t, init, weight, a)
            encoder = ProjectionEncoder(codec, student).eval()
            agreement = level_agreement([(encoder.tokenize(x, SR), t) for x, t in zip(held, truth_tokens)])
            own = measure_stability(encoder, held, SR, ["delay_1", "noise_-60dB"], a.seed)["changes"]
            folder = save_projection(
                a.out / name,
                student,
                codec.describe(),
                extra={"probe": vars(a) | {"out": str(a.out), "init": init, "weight": weight}},
            )
            results[name] = {
                "agreement": agreement["per_level"],
                "delay_1": own["delay_1"]["match_rate"],
                "noise_-60dB": own["noise_-60dB"]["match_rate"],
                "cpu_s": time.process_time() - t0,
                "export": str(folder),
            }
            r = results[name]
            print(
                f"  agreement q0-q3 {[round(100 * v, 1) for v in r['agreement'][:4]]}, delay_1 self q0-q3 "
                f"{[round(100 * v, 1) for v in r['delay_1'][:4]]}, noise_-60dB self q0-q3 "
                f"{[round(100 * v, 1) for v in r['noise_-60dB'][:4]]} ({r['cpu_s']:.0f} CPU s)",
                flush=True,
            )
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"probe_{'_'.join(a.init)}.json").write_text(
        json.dumps({"settings": {k: str(v) for k, v in vars(a).items()}, "results": results}, indent=2) + "\n"
    )
    print(f"total {time.process_time() - cpu0:.0f} CPU s")
    return results


if __name__ == "__main__":
    main()
