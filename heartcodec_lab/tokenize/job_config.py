"""The typed settings of one tokenize job (what ``run_shard`` reads), built from the Hydra config or by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from heartcodec_lab.audio import audio_extensions


@dataclass(frozen=True)
class TokenizeJob:
    output_dir: Path  # config key `output`
    input_dir: Path | None = None  # config key `input`: a folder -> input_dir, a list file -> input_manifest
    input_manifest: Path | None = None
    input: str | None = None  # a URL or Hugging Face dataset (local folders/manifests land in input_dir/_manifest)
    input_split: str = "train"  # Hugging Face dataset input: the split and the audio column
    audio_column: str = "audio"
    layout: str = "simpletuner"  # or "hf": Parquet shards + dataset card (.hf_layout)
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
        """From ``conf/tokenize.yaml`` (typed by its schema) or a dict with its keys: ``input`` (a folder, or a
        JSONL / CSV list file) and ``output``, the job's settings, ``codec.path``, ``encoder.kind/path``."""
        if not cfg.get("output"):
            raise ValueError("output=FOLDER is required")
        values = {f.name: cfg.get(f.name) for f in fields(cls) if cfg.get(f.name) is not None}
        values["output_dir"] = Path(str(cfg.get("output"))).expanduser()
        values.pop("input", None)
        if cfg.get("input"):  # a local folder or list file, or (kept as is) a URL / Hugging Face dataset
            from heartcodec_lab.tokenize.sources import classify_input

            try:
                spec = classify_input(str(cfg.get("input")))
            except FileNotFoundError:  # a local path that is not there yet: the job's own check names it
                spec = None
            if spec is None:
                values["input_dir"] = Path(str(cfg.get("input"))).expanduser()
            elif spec.kind in ("folder", "manifest"):
                values["input_dir" if spec.kind == "folder" else "input_manifest"] = Path(spec.value).expanduser()
            else:
                values["input"] = spec.value if spec.kind == "url" else f"hf:{spec.value}"
        if values.get("layout", "simpletuner") not in ("simpletuner", "hf"):
            raise ValueError(f"layout={values['layout']}: use simpletuner (the default) or hf")
        codec, encoder = cfg.get("codec") or {}, cfg.get("encoder") or {}
        for key, value in (
            ("codec_path", codec.get("path")),
            ("encoder_kind", encoder.get("kind")),
            ("encoder_path", encoder.get("path")),
        ):
            if value is not None:
                values[key] = str(value)
        if "extensions" in values:
            values["extensions"] = tuple(str(e) for e in values["extensions"])
        return cls(**values)

    @property
    def manifest_mode(self) -> bool:
        return self.input_manifest is not None

    def dataset_settings(self) -> dict:
        plain = asdict(self)
        plain["extensions"] = list(audio_extensions(self.extensions))
        settings = {k: plain[k] for k in self.DATASET_KEYS}
        if self.layout != "simpletuner":  # recorded only when not the default, so older datasets stay byte-equal
            settings["layout"] = self.layout
        return settings
