"""Train the miniature HeartCodec: ``python -m heartcodec_lab.minicodec.train``.

Stage 1 trains the ScalarModel autoencoder on synthetic music (optionally adversarial), stage 2
the true encoder, RVQ and flow-matching decoder on its frozen latents; then the weights are
exported in the released layouts. Re-running the same command resumes from
``<run-dir>/stage{1,2}.pt`` (``--max-minutes`` ends a stretch cleanly after a checkpoint).
TensorBoard logs go to ``<run-dir>/tb``; held-out probes to ``<run-dir>/stage{1,2}_eval.jsonl``.

``--init-from DIR`` warm-starts both stages from an exported miniature (``DIR/codec``,
``DIR/encoder``). With ``--stage1 '{"freeze_encoder": true}'`` stage 1 trains the decoder only,
so the latents do not change and stage 2 may run at the same time in another process
(``--stages 2 --latents-from init``); ``--stages export`` then joins the two.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from heartcodec_lab.training.plain_loop import checkpoint_step

from .stage1_run import Stage1Settings, init_weights, train_stage1
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
    p.add_argument("--init-from", default="", help="warm start both stages from this exported miniature")
    p.add_argument(
        "--stages",
        default="all",
        choices=["all", "1", "2", "export"],
        help="all: 1, 2 and export in turn; or only one of them",
    )
    p.add_argument(
        "--latents-from",
        default="stage1",
        choices=["stage1", "init"],
        help="stage 2's latents: the finished stage 1, or --init-from's encoder (stage 1 frozen)",
    )
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

    common = {"width": args.width, "seed": args.seed, "init_from": args.init_from}
    s1 = Stage1Settings(**{**common, "steps": args.stage1_steps, **json.loads(args.stage1)})
    s2 = Stage2Settings(**{**common, "steps": args.stage2_steps, **json.loads(args.stage2)})
    if args.stages in ("all", "1"):
        train_stage1(s1, run, progress=not args.no_progress, max_seconds=left())
    done1 = checkpoint_step(run / "stage1.pt") >= s1.steps
    if args.stages == "all" and not done1:
        print(f"stage 1 paused; rerun the same command to resume from {run / 'stage1.pt'}")
        return 0
    stage1 = torch.load(run / "stage1.pt", weights_only=True)["modules"]["model"] if done1 else None
    if args.latents_from == "init":
        if not args.init_from:
            raise SystemExit("--latents-from init needs --init-from")
        latent_weights = init_weights(args.init_from)
    else:
        latent_weights = stage1
    if args.stages in ("all", "2"):
        if latent_weights is None:
            raise SystemExit(f"stage 2 needs a finished stage 1 ({run / 'stage1.pt'}) or --latents-from init")
        from .quality import stage2_probe

        train_stage2(s2, run, latent_weights, progress=not args.no_progress, max_seconds=left(), eval_fn=stage2_probe)
        if checkpoint_step(run / "stage2.pt") < s2.steps:
            print(f"stage 2 paused; rerun the same command to resume from {run / 'stage2.pt'}")
            return 0
    if args.export_to and args.stages in ("all", "export"):
        return export(args, run, s2, stage1, latent_weights)
    return 0


def export(args, run: Path, s2: Stage2Settings, stage1: dict | None, latent_weights: dict) -> int:
    if stage1 is None or checkpoint_step(run / "stage2.pt") < s2.steps:
        raise SystemExit(f"export needs finished stage 1 and stage 2 checkpoints in {run}")
    for key, value in latent_weights.items():  # stage 2 learnt on these latents: the encoder must be the same
        if key.startswith("encoder.") and not torch.equal(value.float(), stage1[key].float()):
            raise SystemExit(f"stage 1's encoder ({key}) differs from the one stage 2's latents came from")
    from .export import export_minicodec

    r2 = train_stage2(s2, run, latent_weights, progress=False)  # loads the finished checkpoint
    r2["codec"].scalar_model.load_state_dict(stage1)
    extra = {
        "stage1": json.loads((run / "stage1_settings.json").read_text()),
        "stage2": json.loads((run / "stage2_settings.json").read_text()),
    }
    codec_dir, enc_dir = export_minicodec(
        r2["codec"].eval(), r2["encoder"], args.export_to, half=args.half, extra=extra
    )
    print(f"exported {codec_dir} and {enc_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
