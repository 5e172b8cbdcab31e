"""Lazily loaded models and shared helpers of an evaluation run.

Nothing heavy is loaded until it is needed: a dataset-only run never builds the
decoder when the codebook size is known, HeartMuLa is only loaded when enabled.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from heartcodec_lab.audio import SAMPLE_RATE, audio_extensions
from heartcodec_lab.evaluate.metrics.audio import LogMelParams, MstftParams, ReconstructionMetrics


class EvalContext:
    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self._codec = None
        self._encoders: dict[str, object] = {}
        self._mula = None
        metrics_cfg = cfg.get("metrics") or {}
        self.metrics = ReconstructionMetrics(
            self.sample_rate,
            mstft=MstftParams(**OmegaConf.to_container(metrics_cfg.get("mstft") or OmegaConf.create({}))),
            log_mel=LogMelParams(**OmegaConf.to_container(metrics_cfg.get("log_mel") or OmegaConf.create({}))),
        )

    # -- codec ----------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE if self._codec is None else int(self._codec.sample_rate)

    @property
    def codec(self):
        if self._codec is None:
            from heartcodec_lab.codec import load_codec

            c = self.cfg.codec
            self._codec = load_codec(c.get("path"), device=c.get("device", "auto"), dtype=c.get("dtype", "float32"))
        return self._codec

    def codec_description(self) -> dict:
        if self._codec is None:
            return {"path": self.cfg.codec.get("path"), "loaded": False}
        return self._codec.describe()

    def codebook_size(self, dataset_info: dict) -> int:
        """Explicit ``codebook_size`` > ``dataset_info.json`` > the codec config (8192 for released checkpoints)."""
        if self.cfg.get("codebook_size"):
            return int(self.cfg.codebook_size)
        for block in (dataset_info, dataset_info.get("codec") or {}):
            if isinstance(block, dict) and block.get("codebook_size"):
                return int(block["codebook_size"])
        path = self.cfg.codec.get("path")
        if self._codec is None and path:
            from heartcodec_lab.codec import locate_checkpoint

            config = locate_checkpoint(path, "HeartCodec checkpoint") / "config.json"
            if config.is_file():
                return int(json.loads(config.read_text())["codebook_size"])
        return int(self.codec.config.codebook_size)

    def detokenize(self, tokens: torch.Tensor, num_quantizers: int | None = None) -> torch.Tensor:
        """int64 ``[8, T]`` -> float32 ``[2, T * 3840]`` through the real decoder, seeded for repeatability.

        ``num_quantizers=k`` decodes from the first k residual levels only (codebook depth).
        """
        from heartcodec_lab.codec import DetokenizeSettings

        return DetokenizeSettings.from_mapping(self.cfg.detokenize).decode(self.codec, tokens, num_quantizers)

    # -- encoders -------------------------------------------------------------------------
    def has_encoder(self, name: str) -> bool:
        return name in self._encoders

    def encoder(self, spec: dict):
        name = spec["name"]
        if name not in self._encoders:
            from heartcodec_lab.encoders import build_encoder

            extra = {k: v for k, v in spec.items() if k not in ("name", "kind", "path")}  # e.g. batch_chunks
            self._encoders[name] = build_encoder(spec["kind"], spec.get("path"), self.codec, **extra).eval()
        return self._encoders[name]

    # -- audio ----------------------------------------------------------------------------
    def audio_files(self, cfg: DictConfig) -> list[tuple[str, Path]]:
        """``(clip key, path)`` for every audio file under ``input`` (sorted, ``audio.max_clips`` first ones)."""
        from heartcodec_lab.data.files import find_audio_files

        root = Path(cfg.input)
        exts = audio_extensions(cfg.audio.extensions)
        files = find_audio_files(root, exts)
        if not files:
            raise FileNotFoundError(f"{root}: no audio files with extensions {list(exts)}")
        if cfg.audio.get("max_clips"):
            files = files[: int(cfg.audio.max_clips)]
        return [(p.relative_to(root).as_posix(), p) for p in files]

    def read_clip(self, path: Path, cfg: DictConfig) -> tuple[torch.Tensor, str, str]:
        """Audio ``[2, S]`` at the codec rate (cropped to ``audio.max_seconds``) with its tags and lyrics sidecars."""
        from heartcodec_lab.audio import load_audio
        from heartcodec_lab.data.files import sidecar_text

        audio, _ = load_audio(
            path,
            sample_rate=self.sample_rate,
            channels="stereo",
            min_seconds=float(cfg.audio.get("min_seconds") or 0.0),
        )
        if cfg.audio.get("max_seconds"):
            audio = audio[..., : int(float(cfg.audio.max_seconds) * self.sample_rate)]
        tags = sidecar_text(path, ".txt") or (cfg.mula.get("tags") or "")
        lyrics = sidecar_text(path, ".lyrics") or (cfg.mula.get("lyrics") or "")
        return audio, tags, lyrics

    # -- HeartMuLa ------------------------------------------------------------------------
    @property
    def mula_enabled(self) -> bool:
        """``mula.enabled`` when set, else on exactly when a checkpoint path is configured."""
        m = self.cfg.get("mula") or {}
        enabled = m.get("enabled")
        return bool(m.get("path")) if enabled is None else bool(enabled)

    @property
    def mula(self):
        if self._mula is None:
            from heartcodec_lab.mula import load_mula

            m = self.cfg.mula
            self._mula = load_mula(
                m.get("path"), device=m.get("device", "auto"), dtype=m.get("dtype"), version=m.get("version")
            )
        return self._mula

    def frame_nll(self, tokens, tags: str, lyrics: str) -> torch.Tensor:
        """Nats per frame ``[T]`` of ``[8, T]`` tokens under HeartMuLa, conditioned on tags and lyrics."""
        from heartcodec_lab.mula.scoring import frame_nll

        tokens = torch.as_tensor(tokens).long()
        with torch.no_grad():
            return frame_nll(self.mula, tokens, tags, lyrics).float().cpu()

    def mula_description(self) -> dict:
        return self.mula.describe() if self._mula is not None else {"path": self.cfg.mula.get("path")}
