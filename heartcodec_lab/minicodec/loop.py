"""The plain PyTorch loop shared by both stages: seeded, resumable, TensorBoard + rich progress.

A stage supplies ``step(i) -> (loss, parts)`` (it sets its own learning rate for step i) and its modules/optimizer/sampler; the loop owns
checkpoints (``<run>/<stage>.pt``: weights, optimizer, sampler and RNG states, step), so a
killed run resumes to the same numbers it would have reached uninterrupted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import torch

from heartcodec_lab.training.schedule import WarmupCosine

CHECKPOINT_EVERY = 100


def learning_rate(settings, step: int) -> float:
    """A stage's rate at ``step``: linear warm-up, then cosine to 10 % (the projection training's schedule).

    ``settings`` has ``lr``, ``warmup_steps``, ``steps`` and optional ``schedule_steps`` (both stages' settings do).
    """
    total = settings.schedule_steps or settings.steps
    return settings.lr * WarmupCosine(settings.warmup_steps, total, min_lr_ratio=0.1)(step)


def rng_state() -> dict:
    return {"torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])


def save_checkpoint(path: Path, step: int, modules: dict, optimizer, sampler, extra: dict | None = None) -> None:
    state = {
        "step": step,
        "modules": {k: m.state_dict() for k, m in modules.items()},
        "optimizer": optimizer.state_dict(),
        "sampler": sampler.state_dict(),
        "rng": rng_state(),
        "extra": extra or {},
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a kill mid-save leaves the previous checkpoint


def load_checkpoint(path: Path, modules: dict, optimizer, sampler) -> tuple[int, dict]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    for k, m in modules.items():
        m.load_state_dict(state["modules"][k])
    optimizer.load_state_dict(state["optimizer"])
    sampler.load_state_dict(state["sampler"])
    set_rng_state(state["rng"])
    return int(state["step"]), state.get("extra", {})


def run_loop(name: str, run_dir: Path, total_steps: int, step_fn: Callable[[int], tuple[torch.Tensor, dict]],
             modules: dict, optimizer, sampler, eval_fn: Callable[[int], dict] | None = None,
             eval_every: int = 0, checkpoint_every: int = CHECKPOINT_EVERY, progress: bool = True,
             max_seconds: float | None = None) -> dict:
    """Train ``step_fn`` to ``total_steps``, resuming from ``run_dir/<name>.pt`` if present.

    Returns the last step's loss parts (floats). ``max_seconds`` stops early (after a checkpoint)
    so that one stretch of work can end cleanly and the next resumes.
    """
    from torch.utils.tensorboard import SummaryWriter

    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / f"{name}.pt"
    start = 0
    if ckpt.is_file():
        start, _ = load_checkpoint(ckpt, modules, optimizer, sampler)
    writer = SummaryWriter(str(run_dir / "tb" / name), flush_secs=30)
    last: dict = {}
    began = time.time()
    ctx = None
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        ctx = Progress(TextColumn(f"[bold]{name}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                       TextColumn("{task.fields[info]}"), TimeRemainingColumn())
        ctx.start()
        task = ctx.add_task(name, total=total_steps, completed=start, info="")
    try:
        for i in range(start, total_steps):
            loss, parts = step_fn(i)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            params = [p for g in optimizer.param_groups for p in g["params"]]
            grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            last = {k: float(v.detach()) for k, v in parts.items()} | {"total": float(loss.detach()), "grad_norm": float(grad_norm)}
            for k, v in last.items():
                writer.add_scalar(f"{name}/{k}", v, i + 1)
            if ctx is not None:
                ctx.update(task, advance=1, info=" ".join(f"{k}={v:.3f}" for k, v in last.items()))
            done = i + 1
            if eval_fn is not None and eval_every and (done % eval_every == 0 or done == total_steps):
                for k, v in eval_fn(done).items():
                    writer.add_scalar(f"{name}/eval_{k}", v, done)
            if done % checkpoint_every == 0 or done == total_steps:
                save_checkpoint(ckpt, done, modules, optimizer, sampler)
            if max_seconds is not None and time.time() - began > max_seconds:
                save_checkpoint(ckpt, done, modules, optimizer, sampler)
                break
    finally:
        if ctx is not None:
            ctx.stop()
        writer.close()
    return last
