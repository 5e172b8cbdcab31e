"""CPU seconds and peak memory per training step of each projection recipe, at the miniature's sizes.

Each recipe (an experiment of conf/experiment/) is composed exactly as ``python train.py +experiment=NAME``
would, its module built, and ``--steps`` optimizer steps (the frozen encoder included, as in training)
timed (after ``--warmup`` untimed ones) on a
batch of synthetic music, in a subprocess of its own so that its peak RSS is its own. Prints one table:
CPU seconds per step (process time), the ratio to the ``flow`` recipe, peak RSS of the process.

    python benchmarks/bench_recipes.py [--recipes flow distill conv1d ...] [--steps 5] [--threads 1]
        [--batch-size 4] [--crop-seconds 2.56] [--set KEY=VALUE ...]

``--paper`` adds the estimate at the released codec's sizes (no weights needed, nothing allocated): the
released FlowEstimator and ScalarModel are built on PyTorch's ``meta`` device and run once, and every
tensor autograd saves for the backward pass is counted (``saved_tensors_hooks``). With activation
checkpointing (the decode-through default) only one Euler step's (or the decoder's) saved tensors are
alive at a time during the backward pass, so the peak is the frozen weights + the largest of them +
the projection and its AdamW state; the table says whether that fits a 24 GB card.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(recipe: str, steps: int, warmup: int, batch: int, crop: float, extra: list[str]) -> dict:
    """Build ``recipe``'s module and time ``steps`` optimizer steps (this process)."""
    import torch

    from heartcodec_lab.minicodec.data import held_out_pieces
    from heartcodec_lab.training.run import build_module, compose_config

    overrides = [
        f"+experiment={recipe}",
        "paths.output_dir=/tmp/bench_recipes",
        f"data.batch_size={batch}",
        f"data.crop_seconds={crop}",
        *extra,
    ]
    cfg = compose_config(overrides)
    module, _ = build_module(cfg, None, device=torch.device("cpu"))
    module.guard_frozen()
    opt = torch.optim.AdamW(module.trainable_parameters(), lr=1e-4)
    samples = int(round(crop * 48000 / 3840)) * 3840
    audio = held_out_pieces(batch, samples / 48000 + 0.1)[..., :samples]

    def step():  # as a training step: the frozen ScalarModel encoder runs on the batch too
        out = module.forward_batch(audio)
        total, _ = module.losses(out)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    for _ in range(warmup):
        step()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    cpu = (time.process_time() - cpu0) / steps
    return {
        "recipe": recipe,
        "cpu_s_per_step": cpu,
        "wall_s_per_step": (time.perf_counter() - wall0) / steps,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "audio_s_per_step": batch * samples / 48000,
    }


def _saved_bytes(fn, *inputs) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn(*inputs)`` runs (each storage once)."""
    import torch

    seen, total = set(), 0

    def pack(t):
        nonlocal total
        key = (id(t.untyped_storage()) if t.device.type != "meta" else id(t), t.shape)
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*inputs)
    return total


def paper_memory(
    batch: int,
    crop_seconds: float,
    num_steps: int,
    guidance: float,
    decode_frames: int,
    warmup_frames: int,
    channels: int = 1,
    dtype_bytes: int = 4,
) -> dict:
    """GiB per training step of the decode-through recipe at the released sizes (see the module docstring)."""
    import torch

    from heartcodec_lab.codec.config import HeartCodecConfig
    from heartcodec_lab.codec.model import HeartCodec

    cfg = HeartCodecConfig()
    with torch.device("meta"):
        codec = HeartCodec(cfg)
    codec.requires_grad_(False)
    n_params = sum(p.numel() for p in codec.parameters())
    frames = int(round(crop_seconds * 25 / 2)) * 2
    rows = batch * (2 if guidance > 1 else 1)
    est = codec.flow_matching.estimator
    span = (decode_frames or frames) + warmup_frames + 2

    def dit(n):
        x = torch.zeros(n, frames, cfg.in_channels, device="meta", requires_grad=True)
        return _saved_bytes(lambda z: est(z, timestep=torch.zeros(n, device="meta")), x)

    def decoder(n):
        lat = torch.zeros(n, cfg.latent_hidden_dim, span, device="meta", requires_grad=True)
        return _saved_bytes(lambda z: codec.scalar_model.decode(z, block_frames=0), lat)

    # saved tensors include the frozen weights (a matmul keeps its weight for the input's gradient):
    # the activations are the growth per clip, measured between one and two clips
    step_b = (dit(2) - dit(1)) * rows
    dec_b = (decoder(4) - decoder(2)) / 2 * channels * batch  # mono decoder: channels per clip
    gib = 2**30
    weights = n_params * dtype_bytes / gib
    # activations are float32 here; the backward of a layer needs about as much again in transients
    dit, dec = step_b / gib, dec_b / gib
    stored = num_steps * batch * frames * cfg.out_channels * 4 / gib  # the checkpointed step inputs
    peak_ckpt = weights + max(dit, dec) * 2 + stored
    peak_plain = weights + (num_steps * dit + dec) * 2
    return {
        "params_M": n_params / 1e6,
        "weights_gib": weights,
        "dit_step_gib": dit,
        "decoder_gib": dec,
        "peak_checkpointed_gib": peak_ckpt,
        "peak_without_checkpointing_gib": peak_plain,
        "settings": dict(
            batch=batch,
            crop_seconds=crop_seconds,
            num_steps=num_steps,
            guidance=guidance,
            decode_frames=decode_frames,
            warmup_frames=warmup_frames,
            channels=channels,
        ),
    }


def paper_table(rows: list[dict]) -> str:
    lines = [
        "| batch x crop | Euler steps (guidance) | decoded frames (channels) | weights GiB | one DiT step GiB |"
        " decoder GiB |"
        " peak, checkpointed GiB | peak, not checkpointed GiB | 24 GB card |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        st = r["settings"]
        fits = "yes" if r["peak_checkpointed_gib"] < 22 else "no"
        lines.append(
            f"| {st['batch']} x {st['crop_seconds']:g} s | {st['num_steps']} ({st['guidance']:g}) | "
            f"{st['decode_frames']} + {st['warmup_frames']} (x{st['channels']}) | {r['weights_gib']:.1f} | "
            f"{r['dit_step_gib']:.2f} | "
            f"{r['decoder_gib']:.2f} | {r['peak_checkpointed_gib']:.1f} | "
            f"{r['peak_without_checkpointing_gib']:.1f} | {fits} |"
        )
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    flow = next((r["cpu_s_per_step"] for r in rows if r["recipe"] == "flow"), None)
    lines = [
        "| recipe | CPU s / step | x flow | peak RSS MiB | audio s / step |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ratio = f"{r['cpu_s_per_step'] / flow:.2f}" if flow else "-"
        lines.append(
            f"| {r['recipe']} | {r['cpu_s_per_step']:.3f} | {ratio} | {r['peak_rss_mib']:.0f} | "
            f"{r['audio_s_per_step']:.2f} |"
        )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="+", default=["flow", "distill", "conv1d", "linear", "combined", "adapter"])
    p.add_argument("--steps", type=int, default=5, help="timed steps per recipe")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--crop-seconds", type=float, default=2.56)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra train.py override")
    p.add_argument("--paper", action="store_true", help="also the GPU-memory estimate at the released sizes")
    p.add_argument("--paper-only", action="store_true", help="only that estimate (no training steps)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one recipe, print JSON
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    a = parse_args(argv)
    if a.one:
        import torch

        torch.set_num_threads(a.threads)
        print(json.dumps(measure(a.one, a.steps, a.warmup, a.batch_size, a.crop_seconds, a.set)))
        return []
    if a.paper or a.paper_only:
        settings = [
            (16, 5.12, 2, 1.25, 4, 2, 1),
            (8, 5.12, 2, 1.25, 4, 2, 1),
            (4, 5.12, 2, 1.25, 4, 2, 1),
            (8, 5.12, 4, 1.25, 4, 2, 1),
            (16, 5.12, 2, 1.0, 4, 2, 1),
            (8, 5.12, 2, 1.25, 8, 4, 2),
            (4, 5.12, 2, 1.25, 0, 0, 2),
        ]
        print(
            "Released sizes (HeartCodecConfig defaults), float32 weights and activations, decode-through "
            "recipe; counted on the meta device:"
        )
        print(paper_table([paper_memory(*st) for st in settings]))
        if a.paper_only:
            return []
    rows = []
    for recipe in a.recipes:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            recipe,
            "--steps",
            str(a.steps),
            "--warmup",
            str(a.warmup),
            "--threads",
            str(a.threads),
            "--batch-size",
            str(a.batch_size),
            "--crop-seconds",
            str(a.crop_seconds),
        ]
        cmd += [f"--set={s}" for s in a.set]
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"bench_recipes: {recipe} failed:\n{out.stderr[-2000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{recipe}: {rows[-1]['cpu_s_per_step']:.3f} CPU-s/step", file=sys.stderr, flush=True)
    print(
        f"batch {a.batch_size} x {a.crop_seconds:g} s, {a.threads} thread(s), {a.steps} timed steps "
        f"after {a.warmup}; CPU seconds are process time"
    )
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
