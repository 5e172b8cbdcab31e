"""The whole job: build codec + encoder, run this process's shard (optionally one process per device
through Lightning Fabric), finalize the dataset, print the summary, choose the exit code."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from heartcodec_lab.codec.runtime import resolve_device
from heartcodec_lab.tables import print_table
from heartcodec_lab.tokenize.finalize import finalize
from heartcodec_lab.tokenize.job import ShardSummary, job_provenance, run_shard
from heartcodec_lab.tokenize.job_config import TokenizeJob
from heartcodec_lab.tokenize.layout import PARTS_DIR


def build_encoder(cfg, device: torch.device):
    """Codec from ``cfg.codec.path`` and encoder from ``cfg.encoder`` (kind, path, batch_chunks), on ``device``."""
    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.encoders import build_encoder as build

    codec = load_codec(cfg.codec.get("path"), device=str(device), dtype=torch.float32)
    extra = {"allow_codec_mismatch": True} if cfg.encoder.get("allow_codec_mismatch") else {}
    encoder = build(
        cfg.encoder.kind,
        cfg.encoder.get("path"),
        codec,
        batch_chunks=int(cfg.encoder.get("batch_chunks") or 1),
        **extra,
    )
    encoder = encoder.to(device).eval()
    precision = cfg.encoder.get("precision")
    if precision is not None and hasattr(encoder, "set_precision"):  # the official encoder: fp32 | bf16 | auto
        print(f"heartcodec-tokenize: {encoder.set_precision(precision)}")
    return encoder


def check_config(cfg) -> None:
    """Fail before any model is loaded when the inputs cannot work (or would mix embedded and real models)."""
    if not cfg.get("input"):
        raise ValueError(
            "input= is required: a folder of audio, a list file (JSONL / CSV with path, tags, lyrics), "
            "an fsspec URL or hf:DATASET"
        )
    from heartcodec_lab.tokenize.sources import classify_input

    classify_input(str(cfg.input))  # a local input that does not exist is refused here
    if cfg.get("backend", "local") not in ("local", "ray"):
        raise ValueError(f"backend={cfg.backend}: use local (the default) or ray")
    if not cfg.get("output"):
        raise ValueError("output=FOLDER is required")
    if not 0 <= int(cfg.shard) < int(cfg.num_shards):
        raise ValueError(f"need 0 <= shard < num_shards, got shard={cfg.shard} num_shards={cfg.num_shards}")
    job_provenance(cfg)


def run(cfg: DictConfig, encoder=None, console: Console | None = None) -> int:
    """Run the configured job; return the process exit code. ``encoder`` overrides the configured one."""
    console = console or Console(stderr=True)
    check_config(cfg)
    if cfg.get("backend", "local") == "ray":  # one Ray job over the whole input (.ray_backend)
        from heartcodec_lab.tokenize.ray_backend import run_ray

        return _finish(cfg, [run_ray(cfg, encoder=encoder, console=console)], console)
    if cfg.launcher.get("enabled"):
        return _run_with_fabric(cfg, encoder)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = resolve_device(cfg.get("device"))
    encoder = encoder if encoder is not None else build_encoder(cfg, device)
    summary = run_shard(
        TokenizeJob.from_config(cfg), encoder, int(cfg.shard), int(cfg.num_shards), device=device, console=console
    )
    return _finish(cfg, [summary], console)


def _finish(cfg, summaries: list[ShardSummary], console: Console) -> int:
    out = Path(cfg.output).expanduser().resolve()
    if int(cfg.num_shards) == 1:
        finalize(out, backend_id=cfg.backend_id)
    else:
        console.print(
            f"shard {int(cfg.shard)} of {int(cfg.num_shards)} done; when every shard is done run "
            f"[bold]heartcodec-tokenize-merge output={out}[/bold]"
        )
    total = combine(summaries)
    print_summary(total, console)
    provenance = job_provenance(cfg)
    if provenance.embedded:
        console.print(f"[yellow]{provenance.headline()}[/yellow]", highlight=False)
    if cfg.strict and total.failed:
        console.print(f"[red]strict=true and {total.failed} file(s) failed (see {out}/failures.jsonl)")
        return 1
    if total.ok + total.skipped == 0:
        console.print("[red]nothing was tokenized: no input file succeeded")
        return 1
    return 0


def combine(summaries: list[ShardSummary]) -> ShardSummary:
    total = ShardSummary(",".join(s.shard for s in summaries))
    for s in summaries:
        for k in ("ok", "skipped", "failed", "default_tags", "frames", "seconds"):
            setattr(total, k, getattr(total, k) + getattr(s, k))
        total.failures.extend(s.failures)
        total.wall_s = max(total.wall_s, s.wall_s)
    return total


def print_summary(s: ShardSummary, console: Console) -> None:
    rows = [
        ("ok", s.ok),
        ("skipped (done before)", s.skipped),
        ("failed", s.failed),
        ("default tags used", s.default_tags),
        ("hours tokenized", f"{s.hours:.3f}"),
        ("frames", s.frames),
        ("wall time", f"{s.wall_s:.1f} s"),
        ("speed", f"{s.x_realtime:.2f}x realtime"),
    ]
    print_table(None, rows, title="heartcodec-tokenize summary", console=console)
    for f in s.failures[:20]:
        console.print(
            f"[yellow]failed[/yellow] {f['file_name']} ({f['stage']}): {f['error']}", markup=True, highlight=False
        )
    if len(s.failures) > 20:
        console.print(f"... and {len(s.failures) - 20} more in failures.jsonl")


# -- several devices / nodes -----------------------------------------------------------------------------
def _run_with_fabric(cfg: DictConfig, encoder=None) -> int:
    """One process per device; process r of world w takes shard ``shard * w + r`` of ``num_shards * w``."""
    from lightning.fabric import Fabric
    from lightning.fabric.strategies import DDPStrategy

    lc = cfg.launcher
    strategy = DDPStrategy(
        start_method="spawn" if lc.strategy == "ddp_spawn" else "popen",
        timeout=timedelta(hours=float(lc.timeout_hours)),
    )
    fabric = Fabric(accelerator=lc.accelerator, devices=lc.devices, num_nodes=lc.num_nodes, strategy=strategy)
    plain = OmegaConf.to_container(cfg, resolve=True)
    result = fabric.launch(_fabric_worker, plain, encoder)
    return int(result) if result is not None else 0


def _fabric_worker(fabric, plain_cfg: dict, encoder=None) -> int:
    cfg = OmegaConf.create(plain_cfg)
    world, rank = fabric.world_size, fabric.global_rank
    shard, num_shards = int(cfg.shard) * world + rank, int(cfg.num_shards) * world
    device = fabric.device
    if encoder is None:
        encoder = build_encoder(cfg, device)
    else:
        encoder = encoder.to(device)
    console = Console(stderr=True)
    run_shard(
        TokenizeJob.from_config(cfg),
        encoder,
        shard,
        num_shards,
        device=device,
        console=console if rank == 0 else Console(quiet=True),
    )
    fabric.barrier()
    code = 0
    if rank == 0:
        out = Path(cfg.output).expanduser().resolve()
        tags = {
            f"shard-{s:05d}-of-{num_shards:05d}" for s in range(int(cfg.shard) * world, (int(cfg.shard) + 1) * world)
        }
        summaries = [_load_summary(out / PARTS_DIR / t / "summary.json") for t in sorted(tags)]
        code = _finish(cfg, summaries, console)
    fabric.barrier()
    return code


def _load_summary(path: Path) -> ShardSummary:
    d = json.loads(path.read_text())
    s = ShardSummary(
        d["shard"],
        ok=d["ok"],
        skipped=d["skipped"],
        failed=d["failed"],
        default_tags=d["default_tags"],
        frames=d["frames"],
        seconds=d["hours"] * 3600,
        wall_s=d["wall_s"],
    )
    return s
