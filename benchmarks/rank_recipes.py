"""Rank the projection recipes against the miniature HeartCodec: train each, score all on held-out pieces.

With the miniature codec frozen and its true encoder as ground truth, each recipe (an experiment in
conf/experiment/) is trained through the real entry point, ``python train.py +experiment=<recipe>``,
in its own run folder, seeded; ``distill`` distils the true encoder (``teacher.kind=projection``).
Then every exported projection and the true encoder itself encode the same held-out pieces
(unseen seeds and instrument programs) and decode through the same ``detokenize`` with the same
noise; the table has per-level token agreement with the true encoder (q0..q7 each on its own, and
all 8 exact), the reconstruction metrics of bench_minicodec.py, steps and training CPU minutes.

A recipe whose run folder already holds a finished run with the same settings (the folder name
carries a hash of the overrides and of the codec and encoder weights) is not trained again; an
unfinished one resumes from its last checkpoint. So re-running the command only evaluates.

    python benchmarks/rank_recipes.py --steps 2000 [--codec DIR --encoder DIR] [--recipes conv1d flow distill]
        [--out outputs/rank_recipes] [--threads 2] [--pieces 4 --seconds 8] [--set KEY=VALUE ...]

Writes ``<out>/ranking.md`` (the table) and ``<out>/ranking.json``; each run folder has the usual
training outputs plus ``rank_run.json`` (settings, CPU seconds, steps).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from minicodec_eval import (  # noqa: E402  (sibling module of the benchmarks folder)
    METRIC_HEADER,
    agreement_cells,
    agreement_header,
    markdown_table,
    metric_cells,
    shipped_miniature_dirs,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RECIPES = ("conv1d", "flow", "distill")
TRUE_NAME = "true encoder"


def fail(message: str) -> None:
    raise SystemExit(f"rank_recipes: {message}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_inputs(codec_dir: Path, encoder_dir: Path, recipes: list[str], steps: int) -> dict[str, str]:
    """One-line errors for bad input; returns the weight hashes that identify the ground truth."""
    if steps < 1:
        fail(f"--steps must be at least 1, got {steps}")
    for folder, need in ((codec_dir, ("config.json", "model.safetensors")),
                         (encoder_dir, ("projection_config.json", "projection.safetensors"))):
        missing = [n for n in need if not (folder / n).is_file()]
        if missing:
            fail(f"{folder}: missing {', '.join(missing)}")
    known = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
    unknown = [r for r in recipes if r not in known]
    if unknown:
        fail(f"unknown recipe(s) {', '.join(unknown)}: conf/experiment/ has {', '.join(known)}")
    return {"codec": file_sha256(codec_dir / "model.safetensors"),
            "encoder": file_sha256(encoder_dir / "projection.safetensors")}


def recipe_overrides(recipe: str, codec_dir: Path, encoder_dir: Path, a: argparse.Namespace) -> list[str]:
    """The train.py overrides of one recipe at this budget (what the run folder's hash covers)."""
    warmup = a.warmup if a.warmup is not None else min(1000, max(1, a.steps // 10))
    overrides = [
        f"+experiment={recipe}", f"codec.path={codec_dir}", f"seed={a.seed}",
        f"trainer.max_steps={a.steps}", f"model.optim.warmup_steps={warmup}",
        f"data.batch_size={a.batch_size}", f"data.crop_seconds={a.crop_seconds}",
        f"data.samples_per_epoch={a.batch_size * 400}", "data.num_workers=0",
        f"data.synth.num_files={a.train_pieces}", "data.synth.num_val_files=1",
        f"data.synth.seconds={a.piece_seconds}",
        # held-out scoring happens here afterwards: no validation passes or previews during training
        "data.num_val_clips=1", f"data.val_seconds={a.crop_seconds}", "data.val_offset_seconds=0.0",
        "+trainer.limit_val_batches=0",
        f"callbacks.model_checkpoint.every_n_train_steps={a.ckpt_every or max(50, a.steps // 10)}",
    ]
    if recipe == "distill":
        overrides += ["teacher.kind=projection", f"teacher.path={encoder_dir}"]
    return overrides + list(a.set)


def run_folder(out: Path, recipe: str, steps: int, overrides: list[str], weights: dict[str, str]) -> Path:
    key = hashlib.sha256(json.dumps({"overrides": overrides, "weights": weights}).encode()).hexdigest()
    return out / f"{recipe}-{steps}steps-{key[:10]}"


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train_recipe(recipe: str, run_dir: Path, overrides: list[str], threads: int, quiet: bool) -> dict:
    """Train one recipe in ``run_dir`` (skip when finished, resume when interrupted); its ``rank_run.json``."""
    record_path = run_dir / "rank_run.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if record.get("done") and (run_dir / "projection" / "projection.safetensors").is_file():
        print(f"{recipe}: already trained with these settings in {run_dir}, skipped")
        return record
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"recipe": recipe, "overrides": overrides, "threads": threads, "done": False,
              "cpu_s": float(record.get("cpu_s", 0.0)), "wall_s": float(record.get("wall_s", 0.0))}
    last = run_dir / "checkpoints" / "last.ckpt"
    resume = [f"ckpt_path={last}"] if last.is_file() else []
    cmd = [sys.executable, str(REPO / "train.py"), *overrides, *resume, f"hydra.run.dir={run_dir}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    print(f"{recipe}: training{' (resuming)' if resume else ''} in {run_dir}", flush=True)
    cpu0, wall0 = children_cpu_seconds(), time.time()
    log = run_dir / "console.log"
    if quiet:
        with open(log, "a") as sink:
            code = subprocess.run(cmd, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT).returncode
    else:
        code = subprocess.run(cmd, cwd=REPO, env=env).returncode
    record["cpu_s"] += children_cpu_seconds() - cpu0
    record["wall_s"] += time.time() - wall0
    summary_path = run_dir / "summary.json"
    if code == 0 and summary_path.is_file():
        record["global_step"] = json.loads(summary_path.read_text())["global_step"]
        record["done"] = True
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    if not record["done"]:
        fail(f"training {recipe} failed (exit code {code}); see {log if quiet else 'the output above'} "
             f"and {run_dir / 'train.log'}")
    print(f"{recipe}: {record['global_step']} steps, {record['cpu_s'] / 60:.1f} CPU min", flush=True)
    return record


def evaluate(codec_dir: Path, encoder_dir: Path, runs: dict[str, Path], pieces: int, seconds: float,
             seed: int) -> dict[str, dict]:
    """Score the true encoder and every recipe's exported projection on the same held-out pieces."""
    from minicodec_eval import load_miniature, score_encoders

    from heartcodec_lab.encoders import build_encoder
    from heartcodec_lab.minicodec.data import held_out_pieces

    codec, truth = load_miniature(str(codec_dir), str(encoder_dir))
    encoders = {name: build_encoder("projection", str(run / "projection"), codec) for name, run in runs.items()}
    return score_encoders(codec, truth, encoders, held_out_pieces(pieces, seconds), seed, true_name=TRUE_NAME)


def ranking_markdown(scores: dict[str, dict], records: dict[str, dict]) -> str:
    header = ["recipe", "steps", "CPU min", *agreement_header(), *METRIC_HEADER]
    rows = []
    for name, row in scores.items():
        rec = records.get(name)
        budget = [str(rec["global_step"]), f"{rec['cpu_s'] / 60:.1f}"] if rec else ["-", "-"]
        rows.append([name, *budget, *agreement_cells(row["agreement"]), *metric_cells(row)])
    return markdown_table(header, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    codec_default, encoder_default = shipped_miniature_dirs()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codec", type=Path, default=codec_default,
                   help="frozen codec folder (default: the shipped miniature)")
    p.add_argument("--encoder", type=Path, default=encoder_default, help="its true encoder (default: the shipped one)")
    p.add_argument("--steps", type=int, required=True, help="training steps per recipe")
    p.add_argument("--recipes", nargs="+", default=list(DEFAULT_RECIPES), help="experiments of conf/experiment/")
    p.add_argument("--out", type=Path, default=REPO / "outputs" / "rank_recipes")
    p.add_argument("--threads", type=int, default=2, help="torch threads of training and evaluation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--crop-seconds", type=float, default=2.56, help="training crop (a multiple of 0.08 s)")
    p.add_argument("--train-pieces", type=int, default=32, help="synthetic training pieces (heartcodec_lab.data.synth)")
    p.add_argument("--piece-seconds", type=float, default=8.0)
    p.add_argument("--warmup", type=int, default=None, help="learning-rate warm-up steps (default: steps / 10)")
    p.add_argument("--ckpt-every", type=int, default=None, help="checkpoint interval (default: max(50, steps / 10))")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra train.py override, every recipe")
    p.add_argument("--pieces", type=int, default=4, help="held-out pieces")
    p.add_argument("--seconds", type=float, default=8.0, help="length of each held-out piece")
    p.add_argument("--quiet", action="store_true", help="training output to <run>/console.log instead of the terminal")
    p.add_argument("--train-only", action="store_true", help="train (or skip) the recipes, score nothing")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    codec_dir, encoder_dir, out = a.codec.resolve(), a.encoder.resolve(), a.out.resolve()
    weights = check_inputs(codec_dir, encoder_dir, a.recipes, a.steps)
    records, runs = {}, {}
    for recipe in a.recipes:
        overrides = recipe_overrides(recipe, codec_dir, encoder_dir, a)
        runs[recipe] = run_folder(out, recipe, a.steps, overrides, weights)
        records[recipe] = train_recipe(recipe, runs[recipe], overrides, a.threads, a.quiet)
    if a.train_only:
        return {"runs": {r: str(p) for r, p in runs.items()}, "records": records}
    import torch

    torch.set_num_threads(a.threads)
    t0 = time.time()
    scores = evaluate(codec_dir, encoder_dir, runs, a.pieces, a.seconds, a.seed)
    table = ranking_markdown(scores, records)
    note = (f"held-out: {a.pieces} pieces x {a.seconds:g} s (unseen seeds and programs), scored in "
            f"{time.time() - t0:.0f} s; codec {codec_dir}; training: batch {a.batch_size} x {a.crop_seconds:g} s, "
            f"{a.train_pieces} synthetic pieces, seed {a.seed}, {a.threads} thread(s); agreement with the true "
            "encoder's tokens, frame-weighted")
    print(f"{note}\n{table}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "ranking.md").write_text(f"{note}\n\n{table}\n")
    result = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
              "runs": {r: str(p) for r, p in runs.items()}, "records": records, "scores": scores}
    (out / "ranking.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
