"""Train the miniature HeartCodec from scratch: ``python -m heartcodec_lab.minicodec.train``.

Stage 1 trains the ScalarModel autoencoder on synthetic music, stage 2 the true encoder,
RVQ and flow-matching decoder on its frozen latents; then the weights are exported in the
released layouts. Re-running the same command resumes from ``<run-dir>/stage{1,2}.pt``
(``--max-minutes`` ends a stretch cleanly after a checkpoint). TensorBoard logs go to
``<run-dir>/tb``; held-out probes to ``<run-dir>/stage{1,2}_eval.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from .stage1_run import Stage1Settings, train_stage1
from .stage2_run import Stage2Settings, train_stage2


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default="outputs/minicodec", help="checkpoints, logs, probes")
    p.add_argument("--export-to", default=None, help="write codec/ and encoder/ here when done")
    p.add_argument("--half", action="store_true", help="export float16 tensors (half the size)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=Stage1Settings.width)
    p.add_argument("--stage1-steps", type=int, default=Stage1Settings.steps)
    p.add_argument("--stage2-steps", type=int, default=Stage2Settings.steps)
    p.add_argument("--stage1", default="{}", help="JSON overrides of Stage1Settings")
    p.add_argument("--stage2", default="{}", help="JSON overrides of Stage2Settings")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (after a checkpoint) after this long")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    run = Path(args.run_dir)
    began = time.time()
    budget = None if args.max_minutes is None else args.max_minutes * 60

    def left():
        return None if budget is None else max(1.0, budget - (time.time() - began))

    s1 = Stage1Settings(**{"width": args.width, "steps": args.stage1_steps, "seed": args.seed, **json.loads(args.stage1)})
    r1 = train_stage1(s1, run, progress=not args.no_progress, max_seconds=left())
    done1 = torch.load(run / "stage1.pt", weights_only=True)["step"] >= s1.steps
    if not done1:
        print(f"stage 1 paused; rerun the same command to resume from {run / 'stage1.pt'}")
        return 0
    from .quality import stage2_probe

    s2 = Stage2Settings(**{"width": args.width, "steps": args.stage2_steps, "seed": args.seed, **json.loads(args.stage2)})
    r2 = train_stage2(s2, run, r1["model"].state_dict(), progress=not args.no_progress, max_seconds=left(),
                      eval_fn=stage2_probe)
    if torch.load(run / "stage2.pt", weights_only=True)["step"] < s2.steps:
        print(f"stage 2 paused; rerun the same command to resume from {run / 'stage2.pt'}")
        return 0
    if args.export_to:
        from .export import export_minicodec

        extra = {"stage1": json.loads((run / "stage1_settings.json").read_text()),
                 "stage2": json.loads((run / "stage2_settings.json").read_text())}
        codec_dir, enc_dir = export_minicodec(r2["codec"], r2["encoder"], args.export_to, half=args.half, extra=extra)
        print(f"exported {codec_dir} and {enc_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
