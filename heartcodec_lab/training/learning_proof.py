"""Proof that the training loop learns, on CPU with the embedded tiny codec and synthetic music.

For each recipe a projection is trained through the real LightningModule and Trainer; the
table compares held-out numbers of the untrained projection with the trained one:

* distill: the teacher is a hidden, randomly initialised projection of the student's own
  family (same kind and sizes, another seed), so the task is exactly realizable; reported:
  per-quantizer token agreement with the teacher on held-out clips (target: q0 >= 95 %);
* flow: the decoder-consistent flow-matching loss (fixed noise) on held-out clips. The embedded
  estimator is random, so no condition can lower its loss much; the proof therefore first fits a
  copy of the tiny FlowMatching estimator (and its condition embedding) to decode the training
  latents from a hidden projection's tokens, freezes it, and trains a fresh projection through
  it. Reported beside untrained and trained: the loss with the hidden projection's own tokens
  (the floor a perfect student reaches) and the share of the untrained-to-floor gap closed;
* reconstruction: the adapter + ScalarModel-decoder reconstruction losses on held-out clips.

The frozen ScalarModel encoder is deterministic, so its latents are computed once per clip
and handed to the module with the audio (``batch["latents"]``), which keeps the CPU run short.

The command is ``python benchmarks/bench_learning.py [--recipes distill flow reconstruction] [--steps N]``;
the slow tests in ``tests/training/test_train_learning.py`` call :func:`prove_learning` and check the figures.
"""

from __future__ import annotations

import copy
import time

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from heartcodec_lab.codec import RANDOM_CODEC, load_codec
from heartcodec_lab.codec.flow_matching import interpolate_path, target_velocity
from heartcodec_lab.data.synth import synth_music
from heartcodec_lab.encoders.projection import build_projection
from heartcodec_lab.losses import build_losses
from heartcodec_lab.tables import markdown_table
from heartcodec_lab.training.module import ProjectionTrainingModule
from heartcodec_lab.training.teacher import build_teacher

TEACHER_SEED = 1234  # the hidden projection of the distill and flow proofs
FLOW_VAL_DRAWS = 4  # held-out flow loss: noise draws per clip

RECIPES = {
    # the hidden teacher's features are small (variance ~0.015, ~0.02 after the RVQ's project_in):
    # large feature weights balance the code CE; the project_in-space MSE decides the tokens
    "distill": {
        "distill_feature": {"weight": 50.0},
        "distill_rvq_input": {"weight": 2000.0},
        "distill_code": {"weight": 1.0, "tau": 0.005},
    },
    # straight-through gradients of the flow loss push features beyond the codebooks' reach unless
    # the commitment term holds them near their codes
    "flow": {"flow": {"weight": 1.0}, "commitment": {"weight": 1.0}},
    "reconstruction": {
        "stft": {"weight": 1.0},
        "mel": {"weight": 1.0},
        "high_freq": {"weight": 0.5},
        "commitment": {"weight": 0.25},
    },
}
# what "held-out loss" means per recipe (validation keys logged by the module)
HELD_OUT = {"flow": "val/loss/flow", "reconstruction": "val/loss/total"}


@torch.no_grad()
def clip_pool(codec, pieces: int, seconds: float, crop_seconds: float, seed: int) -> list[dict]:
    """Synthetic pieces cut into crops: ``[{audio [2, S], latents [256, S / 1920]}]``."""
    crop = int(crop_seconds * 12.5) * 3840
    items = []
    for k in range(pieces):
        audio = synth_music(seconds, seed + k)
        n = audio.shape[-1] // crop
        crops = audio[:, : n * crop].reshape(2, n, crop).transpose(0, 1).contiguous()  # [n, 2, crop]
        lat = codec.scalar_model.encode(crops.reshape(2 * n, 1, crop))
        lat = lat.reshape(n, 2 * lat.shape[1], lat.shape[2])
        items += [{"audio": crops[i], "latents": lat[i]} for i in range(n)]
    return items


def projection_kwargs(codec, num_layers: int) -> dict:
    return {
        "latent_dim": codec.config.latent_hidden_dim,
        "out_dim": codec.config.dim,
        "hidden_dim": 256,
        "num_layers": num_layers,
    }


def hidden_projection(codec, kind: str, num_layers: int = 2) -> torch.nn.Module:
    """The hidden projection that ``build_teacher(random_projection)`` draws for a student of this family."""
    student = build_projection(kind, **projection_kwargs(codec, num_layers))
    return build_teacher({"kind": "random_projection", "seed": TEACHER_SEED}, codec, student).projection


def fit_decoder(
    codec, projection, items: list[dict], steps: int, lr: float = 3e-3, batch_size: int = 16, seed: int = 0
):
    """A copy of ``codec`` whose FlowMatching estimator and condition embedding are fitted to turn
    ``projection``'s tokens of ``items`` back into their latents (RVQ and ScalarModel untouched)."""
    fitted = copy.deepcopy(codec)
    fm = fitted.flow_matching
    params = [*fm.estimator.parameters(), *fm.cond_feature_emb.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    latents = torch.stack([it["latents"] for it in items])  # [N, 256, 2T]
    with torch.no_grad():
        quantized, _ = codec.quantize(projection(latents))  # [N, T, 512]
    gen = torch.Generator().manual_seed(seed)
    fm.train()  # FlowMatching keeps its RVQ in eval mode
    for _ in range(steps):
        idx = torch.randint(0, len(items), (batch_size,), generator=gen)
        x1 = latents[idx, :, : 2 * quantized.shape[1]].transpose(1, 2)
        x0, t = torch.randn(x1.shape, generator=gen), torch.rand(batch_size, generator=gen)
        mu = fm.embedding_to_condition(quantized[idx])
        pred = fm.velocity(interpolate_path(x0, x1, t[:, None, None]), torch.zeros_like(x1), mu, t)
        loss = torch.nn.functional.mse_loss(pred, target_velocity(x0, x1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    fitted.eval().requires_grad_(False)
    return fitted


def make_module(
    codec, recipe: str, kind: str, seed: int, lr: float, steps: int, num_layers: int = 2, losses: dict | None = None
):
    torch.manual_seed(seed)
    projection = build_projection(kind, **projection_kwargs(codec, num_layers))
    teacher = (
        build_teacher({"kind": "random_projection", "seed": TEACHER_SEED}, codec, projection)
        if recipe == "distill"
        else None
    )
    losses = build_losses(losses or RECIPES[recipe], codec)
    return ProjectionTrainingModule(
        codec,
        projection,
        losses,
        teacher=teacher,
        grad_clip=1.0,
        seed=seed,
        optim={"lr": lr, "warmup_steps": max(1, steps // 20), "total_steps": steps, "min_lr_ratio": 0.05},
        log_codes_every=10**9,
        decode={"through": "adapter"},
    )  # this proof's recipe: the adapter


def quiet_trainer(steps: int, callbacks=()) -> pl.Trainer:
    """A CPU Trainer for ``steps`` steps with no logger, checkpoints, bars or validation (proofs and tests)."""
    return pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )


def held_out(module, loader) -> dict[str, float]:
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    return {k: float(v) for k, v in trainer.validate(module, loader, verbose=False)[0].items()}


def run(
    recipe: str,
    codec,
    train_items,
    val_items,
    steps: int,
    batch_size: int,
    kind: str,
    lr: float,
    num_layers: int = 2,
    losses: dict | None = None,
    fit_steps: int = 1500,
) -> dict:
    # the flow loss draws one (t, noise) per clip: several fixed draws per clip steady its estimate
    repeats = FLOW_VAL_DRAWS if recipe == "flow" else 1
    val_loader = DataLoader(val_items * repeats, batch_size=16)
    extra = {}
    if recipe == "flow":
        start = time.time()
        hidden = hidden_projection(codec, kind, num_layers)
        codec = fit_decoder(codec, hidden, train_items, fit_steps)
        floor = make_module(codec, recipe, kind, seed=0, lr=lr, steps=steps, num_layers=num_layers, losses=losses)
        floor.projection.load_state_dict(hidden.state_dict())
        extra = {"fit_steps": fit_steps, "fit_seconds": time.time() - start, "floor": held_out(floor, val_loader)}
    module = make_module(codec, recipe, kind, seed=0, lr=lr, steps=steps, num_layers=num_layers, losses=losses)
    before = held_out(module, val_loader)
    start = time.time()
    gen = torch.Generator().manual_seed(0)
    train_loader = DataLoader(train_items, batch_size=batch_size, shuffle=True, generator=gen, drop_last=True)
    quiet_trainer(steps).fit(module, train_loader)
    after = held_out(module, val_loader)
    return {
        "recipe": recipe,
        "kind": kind,
        "steps": steps,
        "train_seconds": time.time() - start,
        "skipped_steps": module.skipped_steps,
        "before": before,
        "after": after,
        **extra,
    }


def gap_closed_pct(result: dict, key: str) -> float:
    """Share of the untrained-to-floor gap that training closed (flow), in percent."""
    before, after, floor = result["before"][key], result["after"][key], result["floor"][key]
    return 100.0 * (before - after) / (before - floor)


def table(results: list[dict]) -> str:
    rows = []
    for r in results:
        name = f"{r['recipe']} ({r['kind']})"
        if r["recipe"] == "distill":
            for q in range(8):
                key = f"val/agree_q{q}_pct"
                rows.append(
                    [
                        f"distill ({r['kind']})",
                        f"token agreement q{q} (%)",
                        f"{r['before'][key]:.1f}",
                        f"{r['after'][key]:.1f}",
                        r["steps"],
                        f"{r['train_seconds']:.0f}",
                    ]
                )
            key = "val/loss/distill_feature"
        else:
            key = HELD_OUT[r["recipe"]]
        rows.append(
            [
                name,
                f"{key} (lower is better)",
                f"{r['before'][key]:.4f}",
                f"{r['after'][key]:.4f}",
                r["steps"],
                f"{r['train_seconds']:.0f}",
            ]
        )
        if "floor" in r:
            rows.append(
                [
                    name,
                    "same, hidden projection's tokens (floor)",
                    f"{r['floor'][key]:.4f}",
                    f"gap closed: {gap_closed_pct(r, key):.0f} %",
                    f"{r['fit_steps']} (decoder fit)",
                    f"{r['fit_seconds']:.0f}",
                ]
            )
    return markdown_table(["recipe", "held-out metric", "untrained", "trained", "steps", "train s"], rows).rstrip("\n")


DEFAULT_STEPS = {"distill": 3000, "flow": 600, "reconstruction": 150}
DEFAULT_LR = {"distill": 3e-3, "flow": 3e-4, "reconstruction": 1e-3}
DEFAULT_BATCH = {"distill": 16, "flow": 16, "reconstruction": 4}


def prove_learning(
    recipes=tuple(RECIPES),
    kind: str = "linear",
    steps: int | None = None,
    batch_size: int | None = None,
    pieces: int = 96,
    val_pieces: int = 12,
    seconds: float = 6.0,
    lr: float | None = None,
    layers: int = 2,
    fit_steps: int = 1500,
    tau: float | None = None,
    log=print,
) -> list[dict]:
    """Train each recipe on the embedded tiny codec and return its held-out numbers before and after.

    ``steps`` / ``lr`` / ``batch_size`` None take each recipe's default (``DEFAULT_STEPS``...);
    ``log`` receives a progress line and each recipe's table as it finishes.
    """
    codec = load_codec(RANDOM_CODEC)
    t0 = time.time()
    train_items = clip_pool(codec, pieces, seconds, 0.64, seed=0)
    val_items = clip_pool(codec, val_pieces, seconds, 0.64, seed=10_000)  # other seeds: never seen in training
    log(f"clips: {len(train_items)} train, {len(val_items)} held-out (0.64 s each; {time.time() - t0:.0f} s to encode)")
    results = []
    for recipe in recipes:
        losses = {k: dict(v) for k, v in RECIPES[recipe].items()}
        if recipe == "distill" and tau:
            losses["distill_code"]["tau"] = tau
        results.append(
            run(
                recipe,
                codec,
                train_items,
                val_items,
                steps or DEFAULT_STEPS[recipe],
                batch_size or DEFAULT_BATCH[recipe],
                kind,
                lr or DEFAULT_LR[recipe],
                layers,
                losses,
                fit_steps=fit_steps,
            )
        )
        log(table(results[-1:]))
    return results
