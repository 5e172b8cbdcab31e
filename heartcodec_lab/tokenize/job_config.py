"""The typed settings of one tokenize job (what ``run_shard`` reads), built from the Hydra config or by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from heartcodec_lab.audio import audio_extensions


@dataclass(frozen=True)
class TokenizeJob:
    output_dir: Path
    input_dir: Path | None = None  # one of input_dir / input_manifest
    input_manifest: Path | None = None
    extensions: tuple[str, ...] | None = None  # None: heartcodec_lab.audio.AUDIO_EXTENSIONS
    default_tags: str = "music"
    instrumental_lyrics: str = "[Instrumental]"
    pad_eight_frames: bool = True
    link_audio: bool = True
    num_workers: int = 2
    batch_chunks: int | None = None  # None: the encoder's own
    block_seconds: float = 10.0
    progress: bool = True
    reencode: bool = False  # replace tokens another encoder made (else resuming over them is refused)
    # provenance: which models the job's encoder came from (embedded and real never mix silently)
    codec_path: str | None = None
    encoder_kind: str = "official"
    encoder_path: str | None = None
    allow_embedded: bool = False

    #: the settings that shape the dataset (not paths or machine settings), recorded in dataset_info.json
    DATASET_KEYS = ("extensions", "default_tags", "instrumental_lyrics", "pad_eight_frames", "link_audio")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TokenizeJob:
        """From ``conf/tokenize.yaml`` (a DictConfig or dict): the job's keys, typed; other keys are ignored."""
        values = {f.name: cfg.get(f.name) for f in fields(cls) if cfg.get(f.name) is not None}
        codec, encoder = cfg.get("codec") or {}, cfg.get("encoder") or {}
        for key, value in (("codec_path", codec.get("path")), ("encoder_kind", encoder.get("kind")),
                           ("encoder_path", encoder.get("path"))):
            if value is not None:
                values[key] = str(value)
        if "output_dir" not in values:
            raise ValueError("output_dir=FOLDER is required")
        for key in ("output_dir", "input_dir", "input_manifest"):
            if key in values:
                values[key] = Path(str(values[key])).expanduser()
        if "extensions" in values:
            values["extensions"] = tuple(str(e) for e in values["extensions"])
        for key, kind in (("pad_eight_frames", bool), ("link_audio", bool), ("progress", bool), ("reencode", bool),
                          ("allow_embedded", bool), ("num_workers", int),
                          ("batch_chunks", int), ("block_seconds", float), ("default_tags", str),
                          ("instrumental_lyrics", str)):
            if key in values:
                values[key] = kind(values[key])
        return cls(**values)

    @property
    def manifest_mode(self) -> bool:
        return self.input_manifest is not None

    def dataset_settings(self) -> dict:
        plain = asdict(self)
        plain["extensions"] = list(audio_extensions(self.extensions))
        return {k: plain[k] for k in self.DATASET_KEYS}
