"""Typed settings: one dataclass per config group and per command, beside the YAML they type.

The YAML files hold the values; these classes hold the keys and their types. Each is registered in
Hydra's ConfigStore (:func:`heartcodec_lab.conf.register_schemas`) and named first in its YAML's
defaults list (``- /schema/tokenize``), so Hydra refuses a misspelled key or a value of the wrong
type while composing, and the runner says so in one line listing the valid keys.

A field is ``MISSING`` when its YAML gives the value; a default here is only for keys a YAML may leave
out (an option of a group that does not use them). Open groups (losses, Lightning's trainer, logger
and callbacks, the study's per-recipe overrides) are ``dict[str, Any]``: new entries need no schema.

To add a setting: add the key to the YAML and a typed field to the class here (docs/commands.md).
Plain Python only: the library may import these classes; registering them needs Hydra.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import MISSING

# -- groups shared by several commands ------------------------------------------------------------


@dataclass
class Codec:  # conf/codec/
    path: Optional[str] = MISSING
    device: str = MISSING
    dtype: str = MISSING


@dataclass
class Encoder:  # conf/encoder/ (minicodec, official, projection)
    kind: str = MISSING
    path: Optional[str] = MISSING
    batch_chunks: int = MISSING
    allow_codec_mismatch: bool = False  # minicodec / projection: run with another codec anyway
    precision: str = "fp32"  # official: fp32 | bf16 | auto (docs/performance.md)


@dataclass
class Detokenize:  # conf/detokenize/ -> heartcodec_lab.codec.DetokenizeSettings
    num_steps: int = MISSING
    guidance_scale: float = MISSING
    duration: float = MISSING
    seed: Optional[int] = MISSING
    compile: bool = MISSING
    solver: str = "euler"  # euler | midpoint | heun | ab2
    precision: str = "fp32"  # fp32 | bf16 | auto
    time_power: float = 1.0  # solver time grid linspace(0, 1, n + 1) ** time_power


@dataclass
class TranscriberSettings:  # conf/transcriber/ settings -> heartcodec_lab.transcribe.TranscribeSettings
    chunk_length_s: float = MISSING
    batch_size: int = MISSING
    num_beams: int = MISSING
    temperature: list[float] = MISSING
    compression_ratio_threshold: float = MISSING
    logprob_threshold: float = MISSING
    no_speech_threshold: float = MISSING
    max_new_tokens: int = MISSING
    condition_on_prev_tokens: bool = MISSING
    task: str = MISSING
    language: Optional[str] = MISSING
    seed: Optional[int] = MISSING


@dataclass
class Transcriber:  # conf/transcriber/
    path: Optional[str] = MISSING
    device: str = MISSING
    dtype: str = MISSING
    settings: TranscriberSettings = MISSING


@dataclass
class Mula:  # conf/mula/ (heartcodec-evaluate adds enabled, tags, lyrics)
    path: Optional[str] = MISSING
    version: Optional[str] = MISSING
    device: str = MISSING
    dtype: str = MISSING
    enabled: Optional[bool] = None
    tags: str = ""
    lyrics: str = ""


# -- training: conf/train.yaml and its groups -----------------------------------------------------


@dataclass
class LinearProjection:  # conf/projection/linear.yaml; the keys every projection kind has
    kind: str = MISSING
    latent_dim: Optional[int] = MISSING
    num_channels: int = MISSING
    hidden_dim: int = MISSING
    num_layers: int = MISSING
    out_dim: Optional[int] = MISSING
    activation: str = MISSING


@dataclass
class Conv1dProjection(LinearProjection):  # conf/projection/conv1d.yaml (sizes: conf/scale/projection/)
    kernel_size: int = MISSING


@dataclass
class EncoderTeacher:  # conf/teacher/{minicodec,official,projection}.yaml
    kind: str = MISSING
    path: Optional[str] = MISSING


@dataclass
class RandomProjectionTeacher:  # conf/teacher/random_projection.yaml
    kind: str = MISSING
    seed: int = MISSING


@dataclass
class Synth:
    num_files: int = MISSING
    num_val_files: int = MISSING
    seconds: float = MISSING
    seed: int = MISSING
    cache_dir: str = MISSING


@dataclass
class Data:  # conf/data/ (sizes: conf/scale/)
    _target_: str = MISSING
    train_dir: Optional[str] = MISSING
    train_manifest: Optional[str] = MISSING
    val_dir: Optional[str] = MISSING
    val_manifest: Optional[str] = MISSING
    crop_seconds: float = MISSING
    val_seconds: float = MISSING
    val_offset_seconds: float = MISSING
    num_val_clips: int = MISSING
    batch_size: int = MISSING
    val_batch_size: Optional[int] = MISSING
    num_workers: int = MISSING
    samples_per_epoch: int = MISSING
    channels: str = MISSING
    sample_rate: int = MISSING
    seed: int = MISSING
    synth: Synth = MISSING


@dataclass
class Optim:
    lr: float = MISSING
    betas: list[float] = MISSING
    weight_decay: float = MISSING
    warmup_steps: int = MISSING
    total_steps: Optional[int] = MISSING
    min_lr_ratio: float = MISSING


@dataclass
class Adapter:
    hidden_dim: int = MISSING


@dataclass
class Decode:  # model.decode in conf/train.yaml
    through: str = MISSING  # decoder (the codec's own path) | adapter
    num_steps: int = MISSING
    guidance_scale: float = MISSING
    noise_seed: int = MISSING
    decode_frames: int = MISSING
    warmup_frames: int = MISSING
    channels: int = MISSING
    checkpointing: bool = MISSING


@dataclass
class Model:
    grad_clip: float = MISSING
    max_consecutive_skips: int = MISSING
    log_codes_every: int = MISSING
    adapter: Adapter = MISSING
    optim: Optim = MISSING
    init_from: Optional[str] = None  # an exported projection folder to start from
    decode: Decode = MISSING  # how a reconstruction loss gets its audio (training/decode_through.py)


@dataclass
class Paths:  # conf/paths/
    output_dir: str = MISSING
    cache_dir: str = MISSING


@dataclass
class Train:  # conf/train.yaml
    experiment_name: str = MISSING
    seed: int = MISSING
    ckpt_path: Optional[str] = MISSING
    export_projection: bool = MISSING
    allow_embedded: bool = MISSING
    model: Model = MISSING
    detokenize: Detokenize = MISSING
    codec: Codec = MISSING
    projection: Any = MISSING  # typed by its option's own schema (conv1d / linear)
    loss: dict[str, Any] = MISSING  # open: named losses, each {weight, ...}
    teacher: Any = None  # typed by its option's own schema
    data: Data = MISSING
    trainer: dict[str, Any] = MISSING  # Lightning Trainer arguments
    logger: Optional[dict[str, Any]] = None  # ~logger or logger=null: none
    callbacks: Optional[dict[str, Any]] = None
    paths: Paths = MISSING


# -- the other commands ---------------------------------------------------------------------------


@dataclass
class Launcher:
    enabled: bool = MISSING
    accelerator: str = MISSING
    devices: int = MISSING
    num_nodes: int = MISSING
    strategy: str = MISSING
    timeout_hours: float = MISSING


@dataclass
class Tokenize:  # conf/tokenize.yaml
    input: Optional[str] = MISSING
    output: str = MISSING
    extensions: Optional[list[str]] = MISSING  # null: heartcodec_lab.audio.AUDIO_EXTENSIONS
    default_tags: str = MISSING
    instrumental_lyrics: str = MISSING
    pad_eight_frames: bool = MISSING
    link_audio: bool = MISSING
    backend_id: str = MISSING
    shard: int = MISSING
    num_shards: int = MISSING
    device: str = MISSING
    num_workers: int = MISSING
    batch_chunks: Optional[int] = MISSING
    block_seconds: float = MISSING
    progress: bool = MISSING
    strict: bool = MISSING
    allow_embedded: bool = MISSING
    reencode: bool = MISSING
    launcher: Launcher = MISSING
    input_split: str = MISSING  # hf:<dataset> input
    audio_column: str = MISSING
    layout: str = MISSING  # simpletuner | hf
    backend: str = MISSING  # local | ray
    address: Optional[str] = MISSING  # ray: null (a local instance), auto or ray://HOST:PORT
    ray: dict[str, Any] = MISSING  # the Ray backend's settings (heartcodec_lab.tokenize.ray_backend)
    codec: Codec = MISSING
    encoder: Encoder = MISSING


@dataclass
class TokenizeMerge:  # conf/tokenize_merge.yaml
    output: str = MISSING
    backend_id: str = MISSING
    check: bool = MISSING


@dataclass
class TokenizeRelocate:  # conf/tokenize_relocate.yaml
    output: str = MISSING
    audio_root: Optional[str] = MISSING


@dataclass
class Reconstruct:  # conf/reconstruct.yaml
    input: Optional[str] = MISSING
    output: Optional[str] = MISSING
    threads: Optional[int] = MISSING
    allow_embedded: bool = MISSING
    codec: Codec = MISSING
    encoder: Encoder = MISSING
    detokenize: Detokenize = MISSING


@dataclass
class Generate:  # conf/generate.yaml
    tags: str = MISSING
    lyrics: str = MISSING
    output: str = MISSING
    input: Optional[str] = MISSING
    tokens_path: Optional[str] = MISSING
    max_audio_length_ms: int = MISSING
    temperature: float = MISSING
    topk: int = MISSING
    cfg_scale: float = MISSING
    seed: Optional[int] = MISSING
    lazy_load: bool = MISSING
    progress: bool = MISSING
    allow_embedded: bool = MISSING
    codec: Codec = MISSING
    mula: Mula = MISSING
    encoder: Encoder = MISSING
    detokenize: Detokenize = MISSING


@dataclass
class Transcribe:  # conf/transcribe.yaml
    input: Optional[str] = MISSING
    output: str = MISSING
    extensions: Optional[list[str]] = MISSING  # null: heartcodec_lab.audio.AUDIO_EXTENSIONS
    resume: bool = MISSING
    threads: Optional[int] = MISSING
    transcriber: Transcriber = MISSING


@dataclass
class Export:  # conf/export.yaml
    input: str = MISSING
    output: str = MISSING
    trust_pickle: bool = MISSING


@dataclass
class EvalEncoder:  # one entry of heartcodec-evaluate's encoders list
    name: str = MISSING
    kind: str = MISSING
    path: Optional[str] = None
    batch_chunks: int = 1
    allow_codec_mismatch: bool = False


@dataclass
class EvalAudio:
    extensions: Optional[list[str]] = MISSING  # null: heartcodec_lab.audio.AUDIO_EXTENSIONS
    max_clips: Optional[int] = MISSING
    max_seconds: Optional[float] = MISSING
    min_seconds: float = MISSING


@dataclass
class Mstft:
    fft_sizes: list[int] = MISSING
    hop_divisor: int = MISSING


@dataclass
class LogMel:
    n_fft: int = MISSING
    hop_length: int = MISSING
    n_mels: int = MISSING
    f_min: float = MISSING
    f_max: Optional[float] = MISSING
    power: float = MISSING
    floor: float = MISSING


@dataclass
class EvalMetrics:
    mstft: Mstft = MISSING
    log_mel: LogMel = MISSING


@dataclass
class Switch:
    enabled: bool = MISSING


@dataclass
class CodebookDepth:
    enabled: bool = MISSING
    levels: list[int] = MISSING


@dataclass
class Plots:
    spectrogram_clips: int = MISSING


@dataclass
class EvalStability:  # token stability (heartcodec_lab.evaluate.stability_eval)
    encoders: Any = MISSING  # reference | all | none | [name, ...]
    changes: Optional[list[str]] = MISSING  # null: all
    seed: int = MISSING
    feature_error: bool = MISSING


@dataclass
class Evaluate:  # conf/evaluate.yaml + conf/mode/
    mode: str = MISSING  # conf/mode/: usage | encoders | pairs | adherence | compare
    input: Any = MISSING  # a folder, or (mode=compare) a list of finished run folders
    output: str = MISSING
    label: Optional[str] = MISSING
    title: Optional[str] = MISSING
    resume: bool = MISSING
    changed_settings: str = MISSING
    allow_embedded: bool = MISSING
    threads: Optional[int] = MISSING
    codebook_size: Optional[int] = MISSING
    pad_id: Optional[int] = MISSING
    audio: EvalAudio = MISSING
    encoders: list[EvalEncoder] = MISSING
    reference: Optional[str] = MISSING
    reconstruction: bool = MISSING
    roundtrip: bool = MISSING
    stability: EvalStability = MISSING
    listening_test: Optional[str] = MISSING  # a heartcodec-listen test folder
    save_reconstructions: bool = MISSING
    metrics: EvalMetrics = MISSING
    music_metrics: bool = MISSING
    lyrics: Switch = MISSING
    codebook_depth: CodebookDepth = MISSING
    plots: Plots = MISSING
    estimate: Optional[str] = MISSING
    estimate_name: str = MISSING
    codec: Codec = MISSING
    transcriber: Transcriber = MISSING
    mula: Mula = MISSING
    detokenize: Detokenize = MISSING


@dataclass
class Budget:
    max_steps: int = MISSING
    overrides: list[str] = MISSING


@dataclass
class Study:  # conf/study.yaml
    input: Optional[str] = MISSING
    output: str = MISSING
    official_encoder: Optional[str] = MISSING
    recipes: list[str] = MISSING
    heldout_fraction: float = MISSING
    extensions: Optional[list[str]] = MISSING  # null: heartcodec_lab.audio.AUDIO_EXTENSIONS
    resume: bool = MISSING
    budget: Budget = MISSING
    recipe_overrides: dict[str, Any] = MISSING
    evaluate: dict[str, Any] = MISSING  # merged into conf/evaluate.yaml (checked there)
    ranking: Optional[dict[str, Any]] = (
        None  # preset=ranking (conf/preset/ranking.yaml; heartcodec_lab.study.ranking_run)
    )
    codec: Codec = MISSING
    transcriber: Transcriber = MISSING


@dataclass
class TokenizeConvert:  # conf/tokenize_convert.yaml
    input: str = MISSING
    output: str = MISSING
    layout: str = MISSING  # hf | simpletuner
    audio_root: Optional[str] = MISSING
    shard_rows: int = MISSING


@dataclass
class Listen:  # conf/listen.yaml (heartcodec_lab.listen)
    action: Optional[str] = MISSING  # prepare | serve | results
    output: Optional[str] = MISSING
    reference: Optional[str] = MISSING
    conditions: Any = MISSING  # [DIR, ...] or {name: DIR}
    encoders: Optional[list[EvalEncoder]] = MISSING
    evaluation: Optional[str] = MISSING
    title: str = MISSING
    excerpt: dict[str, Any] = MISSING
    max_items: Optional[int] = MISSING
    loudness: dict[str, Any] = MISSING
    anchors_hz: list[float] = MISSING
    allow_embedded: bool = MISSING
    threads: Optional[int] = MISSING
    test: Optional[str] = MISSING
    host: str = MISSING
    port: int = MISSING
    token: Optional[str] = MISSING
    screening: dict[str, Any] = MISSING
    codec: Codec = MISSING
    detokenize: Detokenize = MISSING


#: (group, name) -> schema, as registered: ``- /schema/<name>`` in a command's YAML, ``- /schema/<group>/<name>``
#: in a group option's YAML
COMMANDS = {
    "train": Train,
    "tokenize": Tokenize,
    "tokenize_merge": TokenizeMerge,
    "tokenize_relocate": TokenizeRelocate,
    "reconstruct": Reconstruct,
    "generate": Generate,
    "transcribe": Transcribe,
    "export": Export,
    "evaluate": Evaluate,
    "study": Study,
    "tokenize_convert": TokenizeConvert,
    "listen": Listen,
}
OPTIONS = {
    ("projection", "conv1d"): Conv1dProjection,
    ("projection", "linear"): LinearProjection,
    ("teacher", "encoder"): EncoderTeacher,
    ("teacher", "random_projection"): RandomProjectionTeacher,
}
GROUPS = {
    "codec": Codec,
    "encoder": Encoder,
    "detokenize": Detokenize,
    "transcriber": Transcriber,
    "mula": Mula,
    "data": Data,
    "paths": Paths,
}
