"""``heartcodec-study preset=ranking``: train the recipes (heartcodec_lab.study.ranking), score them, one table.

Settings: the ``ranking:`` block of conf/preset/ranking.yaml. Output in ``output``: ``ranking.md``
(the table), ``ranking.json``, ``q0_vs_steps.png``, and one folder per recipe.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from heartcodec_lab.study.objectives import decoder_objective
from heartcodec_lab.study.ranking import SR, build_bank, load_pair, reference_features, settings_key, train_recipe

log = logging.getLogger(__name__)

METRICS = ("chroma_similarity", "onset_correlation", "log_mel_l1", "mstft_distance")
REFERENCE = "reference"
STABILITY_CHANGE = "delay_1"  # the stability column: self-agreement under a one-sample (21 us) delay
BANK_KEYS = ("train_pieces", "piece_seconds", "seed", "heldout", "codec_path")  # what the cached banks depend on


def _metrics(ref: torch.Tensor, est: torch.Tensor) -> dict[str, float]:
    from heartcodec_lab.evaluate.metrics.audio import log_mel_l1, mstft_distance
    from heartcodec_lab.evaluate.metrics.music import chroma_similarity, onset_corr

    return {
        "chroma_similarity": chroma_similarity(ref, est, SR),
        "onset_correlation": onset_corr(ref, est, SR),
        "log_mel_l1": log_mel_l1(ref, est, SR),
        "mstft_distance": mstft_distance(ref, est),
    }


@torch.no_grad()
def score(codec, reference, encoders: dict, pieces: torch.Tensor, seed: int, detokenize: dict) -> dict[str, dict]:
    """Reference and ``encoders`` on ``pieces [N, 2, S]``: agreement with the reference and reconstruction
    through the same ``detokenize`` with the same noise (means over pieces; agreement frame-weighted)."""
    from heartcodec_lab.evaluate.metrics.agreement import level_agreement

    names = [REFERENCE, *encoders]
    rows = {n: [] for n in names}
    pairs = {n: [] for n in names}
    for piece in pieces:
        truth = reference.encode(piece, SR).tokens
        for name in names:
            tokens = truth if name == REFERENCE else encoders[name].encode(piece, SR).tokens
            pairs[name].append((tokens, truth))
            torch.manual_seed(seed)
            rows[name].append(_metrics(piece, codec.detokenize(tokens, **detokenize)))
    return {
        n: {**{m: sum(r[m] for r in rows[n]) / len(rows[n]) for m in METRICS}, "agreement": level_agreement(pairs[n])}
        for n in names
    }


@torch.no_grad()
def add_decoder_objective(scores: dict, codec, encoders: dict, heldout: dict, seed: int) -> None:
    """Each row gets ``decoder_objective`` (the codec's own flow-matching loss of its held-out tokens, the
    same draws for all) and ``decoder_objective_rel_pct`` (relative to the reference's tokens, in %)."""
    lat = heldout["latents"]
    base = decoder_objective(codec, heldout["ref_features"], lat, seed=seed)
    for name, row in scores.items():
        value = base if name == REFERENCE else decoder_objective(codec, encoders[name].projection(lat), lat, seed=seed)
        row["decoder_objective"], row["decoder_objective_rel_pct"] = value, 100 * (value / base - 1)


def add_self_agreement(scores: dict, reference, encoders: dict, pieces: torch.Tensor, seed: int) -> None:
    """Each row gets ``self_agreement``: ``{change: per-level fractions}``, the encoder against itself
    under a one-sample delay and white noise at -60 dB (:mod:`heartcodec_lab.evaluate.stability`)."""
    from heartcodec_lab.evaluate.stability import measure_stability

    for name, row in scores.items():
        encoder = reference if name == REFERENCE else encoders[name]
        # noise first: the same draws as the ceiling's (a change's noise is seeded by its place in the list)
        measured = measure_stability(encoder, list(pieces), SR, ["noise_-60dB", STABILITY_CHANGE], seed)
        row["self_agreement"] = {c: block["match_rate"] for c, block in measured["changes"].items()}


def reference_ceiling(reference, pieces: torch.Tensor) -> list[float]:
    """The reference's own per-level self-agreement under -60 dB noise (:func:`heartcodec_lab.evaluate.stability.
    teacher_ceiling`): what exact agreement with it can mean at each level."""
    from heartcodec_lab.evaluate.stability import teacher_ceiling

    levels = teacher_ceiling(reference, list(pieces), SR)
    return [levels[f"q{q}"] for q in range(len(levels))]


def ranking_table(scores: dict, records: dict, ceiling: list[float] | None = None) -> str:
    head = (
        ["recipe", "steps", "CPU min", "CPU s/step"]
        + [f"q{q} %" for q in range(8)]
        + ["all 8 %", "feature err %", "flow loss vs ref %", "self q0 1-sample delay %"]
        + ["chroma", "onset corr", "log-mel L1", "MSTFT"]
    )
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for name, row in scores.items():
        rec = records.get(name)
        ag = row["agreement"]
        levels = [f"{100 * v:.1f}" for v in ag["per_level"]]
        if ceiling is not None and name != REFERENCE:
            levels = [f"{lv} / {100 * c:.0f}" for lv, c in zip(levels, ceiling)]
        budget = [str(rec["steps"]), f"{rec['cpu_s'] / 60:.1f}", f"{rec['cpu_s_per_step']:.3f}"] if rec else ["-"] * 3
        err = f"{100 * rec['final']['relative_feature_error']:.1f}" if rec else "0"
        objective = f"{row['decoder_objective_rel_pct']:+.2f}" if "decoder_objective_rel_pct" in row else "-"
        stable = f"{100 * row['self_agreement'][STABILITY_CHANGE][0]:.1f}" if "self_agreement" in row else "-"
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    *budget,
                    *levels,
                    f"{100 * ag['all_levels']:.1f}",
                    err,
                    objective,
                    stable,
                    *(f"{row[m]:.3f}" for m in METRICS),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def plot_curves(records: dict, path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rec in records.items():
        curve = rec.get("curve") or []
        ax.plot([c["step"] for c in curve], [100 * c["per_level"][0] for c in curve], marker=".", label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("q0 agreement with the reference, held out (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_ranking(cfg: DictConfig) -> Path:
    from heartcodec_lab.encoders import build_encoder
    from heartcodec_lab.minicodec.data import held_out_pieces, train_bank

    r = OmegaConf.to_container(cfg.ranking, resolve=True)
    r.setdefault("recipe_sizes", {})
    torch.set_num_threads(int(r["threads"]))
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    codec_path = cfg.codec.get("path")
    codec, reference = load_pair(codec_path, cfg.get("official_encoder"))
    settings = {
        k: r[k]
        for k in (
            "steps",
            "batch_size",
            "crop_seconds",
            "train_pieces",
            "piece_seconds",
            "seed",
            "curve_every",
            "warmup_steps",
            "overrides",
            "recipe_overrides",
            "recipe_sizes",
            "wall_limit_s",
        )
    }
    settings.update(
        codec_path=codec_path,
        reference=cfg.get("official_encoder"),
        heldout=[r["heldout_pieces"], r["heldout_seconds"]],
    )
    cache = out / f"banks-{settings_key('banks', {k: settings[k] for k in BANK_KEYS})}.pt"
    if cache.is_file():  # the synthetic pieces and their latents: deterministic, computed once per folder
        bank, heldout = torch.load(cache, weights_only=True)
    else:
        bank = build_bank(codec, train_bank(r["train_pieces"], r["piece_seconds"], seed=r["seed"]))
        heldout = build_bank(codec, held_out_pieces(r["heldout_pieces"], r["heldout_seconds"]))
        torch.save((bank, heldout), cache)
    pieces = heldout["audio"]
    heldout["ref_features"], heldout["ref_codes"] = reference_features(
        reference, codec, heldout["audio"], heldout["latents"]
    )
    records = {}
    for recipe in r["recipes"]:
        records[recipe] = train_recipe(recipe, settings, codec, reference, bank, heldout, out)
        records[recipe]["curve"] = json.loads((out / recipe / "curve.json").read_text())
        records[recipe]["final"] = records[recipe]["curve"][-1]
    if r.get("train_only"):
        return out
    t0 = time.time()
    encoders = {n: build_encoder("projection", rec["projection_export"], codec) for n, rec in records.items()}
    scores = score(codec, reference, encoders, pieces, int(r["seed"]), dict(r["detokenize"]))
    add_decoder_objective(scores, codec, encoders, heldout, int(r["seed"]))
    add_self_agreement(scores, reference, encoders, pieces, int(r["seed"]))
    ceiling = reference_ceiling(reference, pieces)
    table = ranking_table(scores, records, ceiling)
    note = (
        f"reference: {cfg.get('official_encoder') or 'the codec true encoder (shipped miniature)'}; held out: "
        f"{r['heldout_pieces']} synthetic pieces x {r['heldout_seconds']:g} s (unseen seeds and programs), scored "
        f"in {time.time() - t0:.0f} s; training: {r['steps']} steps, batch {r['batch_size']} x "
        f"{r['crop_seconds']:g} s crops of {r['train_pieces']} pieces, {r['threads']} thread(s); agreement per "
        "level with the reference (frame-weighted), as `agreement / ceiling`: the ceiling is the reference's own "
        "self-agreement under white noise at -60 dB (docs/stability.md)"
    )
    (out / "ranking.md").write_text(f"{note}\n\n{table}\n")
    (out / "ranking.json").write_text(
        json.dumps(
            {"settings": settings, "records": records, "scores": scores, "ceiling": ceiling}, indent=2, default=str
        )
        + "\n"
    )
    plot_curves(records, out / "q0_vs_steps.png")
    print(f"{note}\n{table}")
    return out / "ranking.md"
