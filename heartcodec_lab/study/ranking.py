"""The recipe ranking: train each projection recipe against a frozen codec, score all against its true encoder.

A preset of ``heartcodec-study`` (``preset=ranking``; conf/preset/ranking.yaml). By default the shipped
miniature codec and its true encoder (``official_encoder=DIR`` with ``codec.path=DIR``: the released
pair). Each recipe of conf/experiment/ is composed as ``python train.py +experiment=NAME`` would
(its losses, projection, decode path, optimizer settings) and trained by the library's own module
(:class:`heartcodec_lab.training.module.ProjectionTrainingModule`: ``forward_batch`` and its loss set)
for ``steps`` optimizer steps (AdamW, warm-up + cosine, gradient clipping, as in training), on random
crops of synthetic training pieces whose ScalarModel latents are computed once (the frozen encoder is
deterministic: the step then costs what the recipe costs, not the encoder). Every ``curve_every``
steps the held-out agreement with the reference is measured (tokens only); at the end every exported
projection and the reference encode the same held-out pieces and decode through the same ``detokenize``
with the same noise.

Per recipe ``<out>/<recipe>/``: ``projection/`` (the export, whose config's ``extra`` holds the
per-level agreement), ``curve.json``, ``run.json`` (settings, CPU seconds = process time, steps).
A finished recipe with the same settings is reused; ``<out>/ranking.md|json`` and ``q0_vs_steps.png``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SR = 48000


def settings_key(recipe: str, settings: dict) -> str:
    """Hash of what decides one recipe's run (its own overrides, not the other recipes')."""
    own = {k: v for k, v in settings.items() if k not in ("recipe_overrides", "recipe_sizes", "wall_limit_s")}
    own["own_overrides"] = list(settings.get("recipe_overrides", {}).get(recipe, []))
    if settings.get("recipe_sizes", {}).get(recipe):
        own["own_sizes"] = dict(settings["recipe_sizes"][recipe])
    return hashlib.sha256(json.dumps({"recipe": recipe, **own}, sort_keys=True, default=str).encode()).hexdigest()[:10]


def load_pair(codec_path: str | None, encoder_path: str | None):
    """(codec, reference encoder): the shipped miniature and its true encoder unless paths are given."""
    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.encoders import build_encoder

    codec = load_codec(codec_path)
    if encoder_path and Path(encoder_path, "projection_config.json").is_file():
        return codec, build_encoder("projection", encoder_path, codec)
    if encoder_path:
        return codec, build_encoder("official", encoder_path, codec)
    return codec, build_encoder("minicodec", None, codec)


@torch.no_grad()
def reference_features(
    reference, codec, audio: torch.Tensor, latents: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features ``[B, T, 512]``, codes ``[B, 8, T]``) of the reference for ``audio [B, 2, S]``."""
    from heartcodec_lab.training.teacher import teacher_targets

    out = teacher_targets(reference, codec, audio, latents)
    return out["teacher_features"].float(), out["teacher_codes"]


@torch.no_grad()
def agreement(module, codec, latents: torch.Tensor, ref_feats: torch.Tensor, ref_codes: torch.Tensor) -> dict:
    """Per-level agreement (fractions), all-8 exact, relative feature error in the RVQ's input space."""
    features = module.projection(latents).float()
    _, codes = codec.quantize(features)
    project = codec.quantizer.project_in
    s, t = project(features), project(ref_feats)
    match = codes == ref_codes  # [B, 8, T]
    return {
        "per_level": match.float().mean(dim=(0, 2)).tolist(),
        "all_levels": float(match.all(1).float().mean()),
        "relative_feature_error": float(((s - t).pow(2).sum() / t.pow(2).sum()).sqrt()),
    }


def _crops(bank_audio, bank_lat, batch: int, frames: int, gen: torch.Generator):
    """A random batch: audio ``[B, 2, frames * 1920]`` and latents ``[B, 256, frames]`` (even starts)."""
    if frames > bank_lat.shape[-1]:
        raise ValueError(
            f"crops of {frames} latent frames do not fit pieces of {bank_lat.shape[-1]}: "
            "make ranking.crop_seconds (or recipe_sizes) shorter than ranking.piece_seconds"
        )
    idx = torch.randint(0, bank_lat.shape[0], (batch,), generator=gen).tolist()
    starts = (torch.randint(0, (bank_lat.shape[-1] - frames) // 2 + 1, (batch,), generator=gen) * 2).tolist()
    hop = bank_audio.shape[-1] // bank_lat.shape[-1]  # samples per latent frame (1920)
    lat = torch.stack([bank_lat[i, :, s : s + frames] for i, s in zip(idx, starts)])
    aud = torch.stack([bank_audio[i, :, s * hop : (s + frames) * hop] for i, s in zip(idx, starts)])
    return aud, lat


def train_recipe(recipe: str, s: dict, codec, reference, bank, heldout, out: Path) -> dict:
    """Train one recipe for ``s['steps']`` steps (or reuse a finished run); returns its run record."""
    from heartcodec_lab.encoders.projection import save_projection
    from heartcodec_lab.training.run import build_module, compose_config
    from heartcodec_lab.training.schedule import WarmupCosine

    key = settings_key(recipe, s)
    run_dir = out / recipe
    record_path = run_dir / "run.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("key") == key and record.get("done"):
            log.info("%s: finished with these settings in %s, reused", recipe, run_dir)
            return record
    run_dir.mkdir(parents=True, exist_ok=True)
    overrides = [
        f"+experiment={recipe}",
        f"paths.output_dir={run_dir}",
        f"seed={s['seed']}",
        f"trainer.max_steps={s['steps']}",
        *s["overrides"],
        *s["recipe_overrides"].get(recipe, []),
    ]
    if s.get("codec_path"):
        overrides.append(f"codec.path={s['codec_path']}")
    cfg = compose_config(overrides)
    distils = cfg.get("teacher") is not None
    if distils:  # a cheap placeholder for the recipe's teacher spec: the study distils from its reference
        cfg.teacher = {"kind": "random_projection", "seed": 0}
    module, _ = build_module(cfg, codec, device=torch.device("cpu"))
    if distils:
        module._frozen["teacher"] = reference
    module.guard_frozen()
    o = module.optim_cfg
    opt = torch.optim.AdamW(
        module.trainable_parameters(), lr=o["lr"], betas=tuple(o["betas"]), weight_decay=o["weight_decay"]
    )
    warmup = s["warmup_steps"] if s["warmup_steps"] is not None else max(1, s["steps"] // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(warmup, s["steps"], o["min_lr_ratio"]))
    gen = torch.Generator().manual_seed(s["seed"])
    sizes = {
        "batch_size": s["batch_size"],
        "crop_seconds": s["crop_seconds"],
        **s.get("recipe_sizes", {}).get(recipe, {}),
    }
    frames = int(round(sizes["crop_seconds"] * 25 / 2)) * 2
    curve, cpu, skipped = [], 0.0, 0
    deadline = time.time() + s["wall_limit_s"] if s.get("wall_limit_s") else None
    steps_done = s["steps"]
    for step in range(1, s["steps"] + 1):
        audio, lat = _crops(bank["audio"], bank["latents"], sizes["batch_size"], frames, gen)
        t0 = time.process_time()
        torch.manual_seed(s["seed"] * 1_000_003 + step)
        out_batch = module.forward_batch(audio, lat)
        total, _ = module.losses(out_batch)
        opt.zero_grad(set_to_none=True)
        if torch.isfinite(total):
            total.backward()
            norm = torch.nn.utils.clip_grad_norm_(module.trainable_parameters(), module.grad_clip or float("inf"))
            if torch.isfinite(norm):
                opt.step()
                sched.step()
            else:
                skipped += 1
        else:
            skipped += 1
        cpu += time.process_time() - t0
        late = deadline is not None and time.time() > deadline
        if step % s["curve_every"] == 0 or step == s["steps"] or late:
            a = agreement(module, codec, heldout["latents"], heldout["ref_features"], heldout["ref_codes"])
            curve.append({"step": step, "cpu_s": cpu, **a})
            (run_dir / "curve.json").write_text(json.dumps(curve) + "\n")
            log.info(
                "%s step %d: q0 %.1f %% q1 %.1f %% rel %.3f (%.0f CPU-s)",
                recipe,
                step,
                100 * a["per_level"][0],
                100 * a["per_level"][1],
                a["relative_feature_error"],
                cpu,
            )
        if late:
            steps_done = step
            log.warning("%s: wall_limit_s reached, stopped at step %d of %d", recipe, step, s["steps"])
            break
    final = curve[-1]
    export = save_projection(
        run_dir / "projection",
        module.projection.cpu(),
        codec.describe(),
        extra={
            "global_step": steps_done,
            "experiment": recipe,
            "agreement_with_reference": {k: final[k] for k in ("per_level", "all_levels", "relative_feature_error")},
        },
    )
    record = {
        "recipe": recipe,
        "key": key,
        "done": True,
        "steps": steps_done,
        "skipped_steps": skipped,
        "stopped_early": steps_done < s["steps"],
        "cpu_s": cpu,
        "cpu_s_per_step": cpu / steps_done,
        "projection_export": str(export),
        "settings": s,
        "sizes": sizes,
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def build_bank(codec, pieces: torch.Tensor) -> dict:
    """Audio ``[N, 2, S]`` -> ``{audio, latents [N, 256, S / 1920]}`` (latents of whole pieces, computed once)."""
    from heartcodec_lab.training.module import ProjectionTrainingModule  # noqa: F401  (same latents as training)

    lat = []
    with torch.no_grad():
        for piece in pieces:
            x = piece[None].float()
            out = codec.scalar_model.encode(x.reshape(2, 1, -1))
            lat.append(out.reshape(1, -1, out.shape[-1])[0])
    latents = torch.stack(lat)
    frames = latents.shape[-1]
    return {"audio": pieces[..., : frames * codec.scalar_model.hop_length].float(), "latents": latents}
