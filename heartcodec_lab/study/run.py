"""One command for the encoder study.

Given a codec, the official encoder and a folder of audio:

1. split the folder (sorted files; every ``1/heldout_fraction``-th file held out, at least one),
   writing ``splits/train.jsonl`` (a training manifest) and ``heldout/`` (links to the held-out
   audio and its ``.txt`` / ``.lyrics`` sidecars);
2. train each recipe (``conv1d`` reconstruction, ``flow`` decoder-consistent, ``distill`` from the
   official encoder) for ``budget.max_steps`` through ``heartcodec_lab.training``'s own entry,
   exporting each projection to ``train/<recipe>/projection``;
3. evaluate the official encoder and every projection on ``heldout/`` with ``heartcodec-evaluate``
   (agreement per quantizer with the official encoder, reconstruction, music-aware metrics, lyric
   intelligibility, codebook usage, tokenization speed) into ``eval/``;
4. write ``report.md`` (+ ``plots/``): training summaries, the headline table, agreement and speed
   plots, then the full evaluation report.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from heartcodec_lab.audio import audio_extensions
from heartcodec_lab.codec.checkpoints import embedded_codec_name
from heartcodec_lab.study.report import write_study_report

log = logging.getLogger(__name__)

RECIPES = ("conv1d", "flow", "distill")
SIDECARS = (".txt", ".lyrics")


def split_folder(
    audio_dir: str | Path, out: Path, heldout_fraction: float, extensions
) -> tuple[list[Path], list[Path]]:
    """Deterministic train / held-out split of an audio folder; writes the manifest and the held-out links."""
    from heartcodec_lab.data.files import find_audio_files

    root = Path(audio_dir)
    exts = audio_extensions(extensions)
    files = find_audio_files(root, exts)
    if len(files) < 2:
        raise ValueError(f"{root}: the study needs at least 2 audio files (train + held out), found {len(files)}")
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    step = max(2, round(1 / heldout_fraction))
    heldout = files[step - 1 :: step] or files[-1:]
    train = [f for f in files if f not in heldout]
    (out / "splits").mkdir(parents=True, exist_ok=True)
    with (out / "splits" / "train.jsonl").open("w", encoding="utf-8") as f:
        for path in train:
            f.write(json.dumps({"path": str(path.resolve())}) + "\n")
    for path in heldout:
        rel = path.relative_to(root)
        for source in [path] + [path.with_suffix(s) for s in SIDECARS if path.with_suffix(s).is_file()]:
            link = out / "heldout" / rel.parent / source.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                os.symlink(source.resolve(), link)
    return train, heldout


def reference_encoder(cfg: DictConfig) -> dict:
    """The study's yardstick (and distillation teacher): the official encoder at ``official_encoder``;
    without one, the default codec's own true encoder (a random tiny vqv12 would measure nothing),
    or the random tiny official encoder when the codec is ``embedded:random``."""
    path = cfg.get("official_encoder")
    if not path and embedded_codec_name(cfg.codec.get("path")) == "minicodec":
        return {"name": "minicodec", "kind": "minicodec", "path": None}
    return {"name": "official", "kind": "official", "path": path}


def _train_recipe(cfg: DictConfig, recipe: str, out: Path, codec) -> dict:
    from heartcodec_lab.training.run import compose_config, train

    run_dir = out / "train" / recipe
    summary_path = run_dir / "summary.json"
    if cfg.get("resume", True) and summary_path.is_file() and (run_dir / "projection").is_dir():
        log.info("%s: already trained, reusing %s", recipe, run_dir)
        return json.loads(summary_path.read_text())
    overrides = [
        f"+experiment={recipe}",
        f"paths.output_dir={run_dir}",
        f"paths.cache_dir={out / 'cache'}",
        f"data.train_manifest={out / 'splits' / 'train.jsonl'}",
        f"trainer.max_steps={int(cfg.budget.max_steps)}",
    ]
    if cfg.codec.get("path"):
        overrides.append(f"codec.path={cfg.codec.path}")
    if recipe == "distill":  # the study distills from its reference encoder
        ref = reference_encoder(cfg)
        overrides += [f"teacher={ref['kind']}", f"teacher.path={ref['path'] or 'null'}"]
    overrides += list(cfg.budget.get("overrides") or [])
    overrides += list((cfg.get("recipe_overrides") or {}).get(recipe) or [])
    start = time.perf_counter()
    summary = train(compose_config(overrides), codec=codec)
    summary["seconds"] = time.perf_counter() - start
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _evaluate(cfg: DictConfig, out: Path, trained: dict[str, dict]) -> dict:
    from heartcodec_lab.evaluate import run_evaluation

    ref = reference_encoder(cfg)
    encoders = [ref] + [{"name": r, "kind": "projection", "path": s["projection_export"]} for r, s in trained.items()]
    ev = OmegaConf.to_container(cfg.evaluate, resolve=True)
    ev.update(
        {
            "mode": "encoders",
            "input": str(out / "heldout"),
            "output": str(out / "eval"),
            "encoders": encoders,
            "reference": ref["name"],
            "codec": OmegaConf.to_container(cfg.codec, resolve=True),
            "transcriber": OmegaConf.to_container(cfg.transcriber, resolve=True),
            "label": "study",
            "resume": bool(cfg.get("resume", True)),
        }
    )
    return run_evaluation(_evaluation_config(ev))


def _evaluation_config(values: dict) -> DictConfig:
    """``conf/evaluate.yaml`` with the study's values merged in (every evaluate default stays available)."""
    from heartcodec_lab.training.run import compose_config

    base = compose_config(config_name="evaluate")
    OmegaConf.set_struct(base, False)
    merged = OmegaConf.merge(base, OmegaConf.create(values))
    merged.encoders = values["encoders"]  # lists replace, never merge element-wise
    return merged


def run_study(cfg: DictConfig | dict) -> Path:
    """Run the whole study described by ``cfg`` (see ``conf/study.yaml``); returns the report path."""
    from heartcodec_lab.codec import load_codec

    cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
    if cfg.get("ranking") is not None:  # preset=ranking
        from heartcodec_lab.study.ranking_run import run_ranking

        return run_ranking(cfg)
    if not cfg.get("input"):
        raise ValueError("set input=FOLDER (training and held-out audio)")
    recipes = list(cfg.recipes)
    unknown = sorted(set(recipes) - set(RECIPES))
    if unknown:
        raise ValueError(f"unknown recipes {unknown}; choose from {list(RECIPES)}")
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    train_files, heldout = split_folder(cfg.input, out, float(cfg.heldout_fraction), cfg.extensions)
    log.info("study: %d training files, %d held out", len(train_files), len(heldout))
    codec = load_codec(cfg.codec.get("path"), device="cpu", dtype=cfg.codec.get("dtype", "float32"))
    trained = {r: _train_recipe(cfg, r, out, codec) for r in recipes}
    evaluation = _evaluate(cfg, out, trained)
    return write_study_report(out, cfg, trained, evaluation, n_train=len(train_files), n_heldout=len(heldout))
