"""CPU seconds and peak memory per training step of each projection recipe, at the miniature's sizes.

Each recipe (an experiment of conf/experiment/) is composed exactly as ``python train.py +experiment=NAME``
would, its module built, and ``--steps`` optimizer steps timed (after ``--warmup`` untimed ones) on a
batch of synthetic music, in a subprocess of its own so that its peak RSS is its own. Prints one table:
CPU seconds per step (process time), the ratio to the ``flow`` recipe, peak RSS of the process.

    python benchmarks/bench_recipes.py [--recipes flow distill conv1d ...] [--steps 5] [--threads 1]
        [--batch-size 4] [--crop-seconds 2.56] [--set KEY=VALUE ...]

The paper estimate of GPU memory at the released codec's sizes is in docs/training.md ("Cost").
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

    overrides = [f"+experiment={recipe}", "paths.output_dir=/tmp/bench_recipes", f"data.batch_size={batch}",
                 f"data.crop_seconds={crop}", *extra]
    cfg = compose_config(overrides)
    module, _ = build_module(cfg, None, device=torch.device("cpu"))
    module.guard_frozen()
    opt = torch.optim.AdamW(module.trainable_parameters(), lr=1e-4)
    samples = int(round(crop * 48000 / 3840)) * 3840
    audio = held_out_pieces(batch, samples / 48000 + 0.1)[..., :samples]
    latents = module.latents(audio)

    def step():
        out = module.forward_batch(audio, latents)
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
    return {"recipe": recipe, "cpu_s_per_step": cpu, "wall_s_per_step": (time.perf_counter() - wall0) / steps,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "audio_s_per_step": batch * samples / 48000}


def table(rows: list[dict]) -> str:
    flow = next((r["cpu_s_per_step"] for r in rows if r["recipe"] == "flow"), None)
    lines = ["| recipe | CPU s / step | x flow | peak RSS MiB | audio s / step |", "| --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ratio = f"{r['cpu_s_per_step'] / flow:.2f}" if flow else "-"
        lines.append(f"| {r['recipe']} | {r['cpu_s_per_step']:.3f} | {ratio} | {r['peak_rss_mib']:.0f} | "
                     f"{r['audio_s_per_step']:.2f} |")
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
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one recipe, print JSON
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    a = parse_args(argv)
    if a.one:
        import torch

        torch.set_num_threads(a.threads)
        print(json.dumps(measure(a.one, a.steps, a.warmup, a.batch_size, a.crop_seconds, a.set)))
        return []
    rows = []
    for recipe in a.recipes:
        cmd = [sys.executable, __file__, "--one", recipe, "--steps", str(a.steps), "--warmup", str(a.warmup),
               "--threads", str(a.threads), "--batch-size", str(a.batch_size), "--crop-seconds", str(a.crop_seconds)]
        cmd += [f"--set={s}" for s in a.set]
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"bench_recipes: {recipe} failed:\n{out.stderr[-2000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{recipe}: {rows[-1]['cpu_s_per_step']:.3f} CPU-s/step", file=sys.stderr, flush=True)
    print(f"batch {a.batch_size} x {a.crop_seconds:g} s, {a.threads} thread(s), {a.steps} timed steps "
          f"after {a.warmup}; CPU seconds are process time")
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
