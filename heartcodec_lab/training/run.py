"""Build everything a training run needs from a composed config and fit it.

``train(cfg)`` is what ``python train.py`` and ``heartcodec-train`` call after Hydra has
composed ``conf/train.yaml``; tests call it with a config from
``hydra.compose``. It returns a small summary dict (also written as ``summary.json``).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from heartcodec_lab.conf import CONF_PKG, with_scale
from heartcodec_lab.training.overrides import codec_device, select_experiment


def _plain(node) -> dict | list | None:
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


def run_provenance(cfg: DictConfig):
    """Codec and teacher (when distilling) are both checkpoints or both embedded, unless ``allow_embedded``.

    A ``random_projection`` teacher is embedded by definition (a hidden random projection for the demo).
    """
    from heartcodec_lab.provenance import Component, check_components, codec_component, encoder_component

    components = [codec_component(cfg.codec.get("path"))]
    teacher = cfg.get("teacher")
    if teacher:
        if teacher.get("kind") == "random_projection":
            components.append(Component("teacher", "teacher.path", None, fix="teacher=official teacher.path=..."))
        else:
            components.append(encoder_component("teacher", "teacher.path", teacher.get("kind"), teacher.get("path")))
    return check_components(components, bool(cfg.get("allow_embedded", False)))


def start_from(projection, path) -> None:
    """Load an exported projection's weights into ``projection`` (same kind and sizes, else a clear error)."""
    from heartcodec_lab.encoders.projection import load_projection

    start, config = load_projection(path)
    if start.kind != projection.kind or dict(start.config) != dict(projection.config):
        raise ValueError(
            f"model.init_from={path}: a {start.kind} projection {dict(start.config)} cannot start a "
            f"{projection.kind} projection {dict(projection.config)}; set projection.* to its sizes"
        )
    projection.load_state_dict(start.state_dict())


def build_module(cfg: DictConfig, codec=None, device: str | torch.device = "cpu"):
    """(module, datamodule) for ``cfg``; ``codec`` defaults to ``load_codec(cfg.codec.path)`` on ``device``."""
    from hydra.utils import instantiate

    from heartcodec_lab.codec import load_codec
    from heartcodec_lab.encoders.projection import default_projection
    from heartcodec_lab.losses import build_losses
    from heartcodec_lab.training.adapter import LatentAdapter
    from heartcodec_lab.training.module import ProjectionTrainingModule
    from heartcodec_lab.training.teacher import build_teacher

    provenance = run_provenance(cfg)
    if codec is None:
        codec = load_codec(cfg.codec.path, device=device, dtype=cfg.codec.get("dtype", "float32"))
    # the library's builder: sizes left null follow the codec; initialised from the run's seed
    spec = {k: v for k, v in _plain(cfg.projection).items() if v is not None}
    projection = default_projection(codec, seed=int(cfg.seed), **spec)
    if cfg.model.get("init_from"):  # start from an exported projection (e.g. fine-tune a teacher for stability)
        start_from(projection, cfg.model.init_from)
    losses = build_losses(_plain(cfg.loss), codec)
    teacher = build_teacher(_plain(cfg.get("teacher")), codec, projection)
    adapter = None
    decode = _plain(cfg.model.get("decode")) or {}
    if "recon" in losses.requires and decode.get("through", "decoder") == "adapter":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(cfg.seed) + 1)
            adapter = LatentAdapter(
                in_dim=codec.config.dim,
                latent_dim=codec.config.latent_hidden_dim,
                **(_plain(cfg.model.get("adapter")) or {}),
            )
    run_info = {
        "config": _plain(cfg.get("recipe_info")) or {},
        "codec": codec.describe(),
        "experiment": cfg.get("experiment_name"),
        "provenance": provenance.as_dict(),
    }
    module = ProjectionTrainingModule(
        codec,
        projection,
        losses,
        teacher=teacher,
        adapter=adapter,
        optim=_plain(cfg.model.optim),
        grad_clip=cfg.model.grad_clip,
        seed=cfg.seed,
        max_consecutive_skips=cfg.model.max_consecutive_skips,
        log_codes_every=cfg.model.log_codes_every,
        run_info=run_info,
        decode=decode,
    )
    datamodule = instantiate(cfg.data)
    return module, datamodule


def build_trainer(cfg: DictConfig):
    from hydra.utils import instantiate

    from heartcodec_lab.training.progress import StepProgressBar

    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    if cfg.trainer.get("enable_progress_bar", True):
        callbacks.append(StepProgressBar())  # steps, loss, x realtime (instead of Lightning's per-epoch bar)
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


def params_sha256(module: torch.nn.Module) -> str:
    """Hash of a module's parameters (bit-exact comparison across ranks or runs)."""
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train(cfg: DictConfig, codec=None) -> dict:
    """Fit the projection described by ``cfg``; export it and return a summary.

    ``codec``: an already loaded codec to use instead of ``load_codec(cfg.codec.path)`` (tests share one).
    """
    import lightning.pytorch as pl

    from heartcodec_lab.atomic import atomic_write_json
    from heartcodec_lab.encoders.projection import save_projection
    from heartcodec_lab.training.console import configure_console, listening_files, run_summary

    configure_console()

    # the frozen codec runs in true float32 (TF32 changes its outputs)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    # checkpoints deliberately hold the state *after* each optimizer step (what resume needs)
    warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
    # mid-epoch resume is exact here: the sampler restarts from the module's restored batch count
    warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")
    # resuming into a new run folder (Hydra makes one per run) is the normal case; the checkpoint callback keeps
    # no metric-ranked state (save_top_k=1 of the newest, save_last), so nothing it says is lost matters here
    warnings.filterwarnings("ignore", message="The dirpath has changed from")
    provenance = run_provenance(cfg)  # refuses embedded parts next to checkpoints before any work
    if provenance.embedded:
        logging.getLogger(__name__).warning("%s", provenance.headline())
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = build_trainer(cfg)
    device = codec_device(cfg.codec.get("device"), trainer.strategy.root_device)
    module, datamodule = build_module(cfg, codec, device=device)
    if trainer.is_global_zero:
        (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    final_ckpt = out_dir / "checkpoints" / "final.ckpt"
    trainer.save_checkpoint(final_ckpt, weights_only=False)  # full state: resumable

    local = params_sha256(module.projection)
    shas = [local]
    if trainer.world_size > 1:
        gathered = [None] * trainer.world_size
        torch.distributed.all_gather_object(gathered, local)
        shas = gathered
    summary = {
        "provenance": provenance.as_dict(),
        "global_step": int(trainer.global_step),
        "batches_seen": int(module.batches_seen),
        "skipped_steps": int(module.skipped_steps),
        "world_size": int(trainer.world_size),
        "projection_sha256_per_rank": shas,
        "final_checkpoint": str(final_ckpt),
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1},
    }
    if trainer.is_global_zero:
        if cfg.get("export_projection", True):
            export_dir = save_projection(
                out_dir / "projection",
                module.projection.cpu(),
                module.codec.describe(),
                extra={
                    "global_step": summary["global_step"],
                    "source": str(final_ckpt),
                    "experiment": cfg.get("experiment_name"),
                },
                provenance=provenance.as_dict(),
            )
            summary["projection_export"] = str(export_dir)
        summary["listening_files"] = [str(p) for p in listening_files(out_dir)]
        atomic_write_json(out_dir / "summary.json", summary)
        print(run_summary(summary, out_dir), flush=True)
    return summary


def compose_config(
    overrides: list[str] | None = None, config_name: str = "train", return_hydra_config: bool = False
) -> DictConfig:
    """Compose a packaged config like its command would (for notebooks, tests and the study): ``+experiment=``
    read as the experiment slot, the ``scale`` chosen from ``codec.path`` unless given, the schemas checked.

    ``paths.output_dir`` has no Hydra run directory here: pass ``paths.output_dir=...``.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    overrides = with_scale(config_name, select_experiment(list(overrides or [])))
    if GlobalHydra.instance().is_initialized():  # inside a command's own Hydra app (the study): its search path
        return compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)
    with initialize_config_module(config_module=CONF_PKG.removeprefix("pkg://"), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)
