"""A plain PyTorch training loop with exact resume (no Lightning): the miniature codec's stages use it.

The pieces the Lightning recipes use too: AdamW with :class:`~heartcodec_lab.training.schedule.WarmupCosine`
through ``LambdaLR`` (:func:`adamw_with_schedule`), and a checkpoint that holds everything the next
step depends on, so that a run stopped at any checkpoint and resumed reaches bit-identical weights:

``<run>/<name>.pt``: step, every module's state, every optimizer's and scheduler's state, the
sampler's generator (the data position), the global torch RNG; written atomically. Its ``extra``
holds ``cpu_s``, the process CPU seconds of the training so far (all resumed stretches together).

A caller supplies ``step_fn(i) -> (loss, parts)``; the loop back-propagates ``loss`` into the
``"main"`` optimizer's parameters (clipped to norm 1). Anything else a step does with its own
optimizers (a discriminator's update) happens inside ``step_fn``; pass those optimizers and
schedulers in ``optimizers`` / ``schedulers`` so that they are checkpointed too.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from heartcodec_lab.training.schedule import WarmupCosine


def adamw_with_schedule(
    params,
    lr: float,
    warmup_steps: int,
    total_steps: int,
    betas=(0.9, 0.99),
    weight_decay: float = 0.0,
    min_lr_ratio: float = 0.1,
):
    """AdamW + ``LambdaLR(WarmupCosine)`` (linear warm-up, cosine to ``min_lr_ratio``); the projection recipes' pair."""
    opt = torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupCosine(warmup_steps, total_steps, min_lr_ratio))
    return opt, sched


def save_checkpoint(
    path: Path, step: int, modules: dict, optimizers: dict, schedulers: dict, sampler, extra: dict | None = None
) -> None:
    state = {
        "step": step,
        "modules": {k: m.state_dict() for k, m in modules.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        # LambdaLR's state holds the WarmupCosine object's plain fields; only the counters matter on reload
        "schedulers": {k: {"last_epoch": s.last_epoch, "base_lrs": s.base_lrs} for k, s in schedulers.items()},
        "sampler": sampler.state_dict(),
        "rng": {"torch": torch.get_rng_state()},
        "extra": extra or {},
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a kill mid-save leaves the previous checkpoint


def load_checkpoint(path: Path, modules: dict, optimizers: dict, schedulers: dict, sampler) -> tuple[int, dict]:
    """Restore everything :func:`save_checkpoint` wrote; a missing piece is an error naming the file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for group, names in (("modules", modules), ("optimizers", optimizers), ("schedulers", schedulers)):
        missing = set(names) - set(state.get(group, {}))
        if missing:
            raise ValueError(f"{path}: checkpoint has no {group} {sorted(missing)} (written by another setup?)")
    for k, m in modules.items():
        m.load_state_dict(state["modules"][k])
    for k, o in optimizers.items():
        o.load_state_dict(state["optimizers"][k])
    for k, s in schedulers.items():
        s.last_epoch = state["schedulers"][k]["last_epoch"]
        s.base_lrs = list(state["schedulers"][k]["base_lrs"])
        s._last_lr = [g["lr"] for g in s.optimizer.param_groups]
    sampler.load_state_dict(state["sampler"])
    torch.set_rng_state(state["rng"]["torch"])
    return int(state["step"]), state.get("extra", {})


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint was written at (0 when there is none)."""
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"]) if Path(path).is_file() else 0


def run_loop(
    name: str,
    run_dir: Path,
    total_steps: int,
    step_fn: Callable[[int], tuple[torch.Tensor, dict]],
    modules: dict,
    optimizers: dict,
    schedulers: dict,
    sampler,
    eval_fn: Callable[[int], dict] | None = None,
    eval_every: int = 0,
    checkpoint_every: int = 100,
    checkpoint_minutes: float | None = None,
    progress: bool = True,
    max_seconds: float | None = None,
    clip_norm: float = 1.0,
) -> dict:
    """Train ``step_fn`` to ``total_steps``, resuming from ``run_dir/<name>.pt`` if present.

    ``optimizers["main"]`` steps on the returned loss; every scheduler steps once per step.
    A checkpoint is written every ``checkpoint_every`` steps, also after ``checkpoint_minutes`` of
    wall time, and at the end. ``max_seconds`` stops early (after a checkpoint) so that one stretch
    of work ends cleanly and the next resumes. Returns the last step's loss parts (floats).
    """
    from torch.utils.tensorboard import SummaryWriter

    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / f"{name}.pt"
    start, extra = 0, {}
    if ckpt.is_file():
        start, extra = load_checkpoint(ckpt, modules, optimizers, schedulers, sampler)
    cpu_before, cpu_began = float(extra.get("cpu_s", 0.0)), time.process_time()

    def save(done: int) -> None:  # the process CPU seconds of all stretches so far travel with the checkpoint
        save_checkpoint(
            ckpt,
            done,
            modules,
            optimizers,
            schedulers,
            sampler,
            {"cpu_s": cpu_before + time.process_time() - cpu_began},
        )

    main = optimizers["main"]
    writer = SummaryWriter(str(run_dir / "tb" / name), flush_secs=30)
    last: dict = {}
    began = saved_at = time.time()
    ctx = None
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        ctx = Progress(
            TextColumn(f"[bold]{name}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
        )
        ctx.start()
        task = ctx.add_task(name, total=total_steps, completed=start, info="")
    try:
        for i in range(start, total_steps):
            lr = main.param_groups[0]["lr"]
            loss, parts = step_fn(i)
            main.zero_grad(set_to_none=True)
            loss.backward()
            params = [p for g in main.param_groups for p in g["params"]]
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip_norm)
            main.step()
            with warnings.catch_warnings():  # a discriminator's schedule counts steps before it trains
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
                for s in schedulers.values():
                    s.step()
            last = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in parts.items()}
            last |= {"total": float(loss.detach()), "grad_norm": float(grad_norm), "lr": lr}
            for k, v in last.items():
                writer.add_scalar(f"{name}/{k}", v, i + 1)
            if ctx is not None:
                ctx.update(task, advance=1, info=" ".join(f"{k}={v:.3f}" for k, v in last.items()))
            done = i + 1
            if eval_fn is not None and eval_every and (done % eval_every == 0 or done == total_steps):
                for k, v in eval_fn(done).items():
                    writer.add_scalar(f"{name}/eval_{k}", v, done)
            now = time.time()
            stop = max_seconds is not None and now - began > max_seconds
            timed = checkpoint_minutes is not None and now - saved_at > 60 * checkpoint_minutes
            if done % checkpoint_every == 0 or done == total_steps or stop or timed:
                save(done)
                saved_at = now
            if stop:
                break
    finally:
        if ctx is not None:
            ctx.stop()
        writer.close()
    return last
