"""``heartcodec-tokenize backend=ray``: the same job on Ray Data (``pip install heartcodec-lab[ray]``).

The driver (this process) plans exactly as the local backend does (:func:`.job.run_shard`: provenance,
inputs, resume, ledger) and writes every result itself (token file renamed into place, then its ledger
line), so outputs, manifest, failure list and the resume rules are the local backend's. Only the work
in between moves onto the cluster, as one Ray Data pipeline:

``from_items`` (one row per file) -> ``flat_map(DecodeFile)``: CPU tasks read, hash, make stereo and
resample one file into encoder chunks, exactly as the local workers do (:class:`.pipeline.ChunkSource`)
-> ``map_batches(EncodeChunks)``: an actor pool, one encoder per actor (``num_gpus`` each when the
cluster has GPUs, CPU actors otherwise), ``batch_chunks`` chunks per call, the final chunk through
``encode_last_chunk`` on its own where the encoder has that shortcut -> back on the driver,
:class:`Reassembly` puts each file's codes together and cuts them to the file's frame count.

Ray Data brings backpressure (chunks wait in a bounded object store), retries (a dead actor is
restarted and its batch encoded again: ``ray.max_restarts``) and streaming; the driver shows one
progress bar for the whole job. A driver or cluster that dies leaves the ledger as the local backend
would: a rerun skips every file whose tokens were written. Without ``address=`` a local Ray instance
is started (and stopped at the end); ``address=auto`` / ``ray://HOST:10001`` joins a running cluster,
whose nodes need this package installed.

Audio and codes cross the object store as bytes (float32 ``[2, chunk_samples]``, int64 ``[8, F]``).
"""

from __future__ import annotations

import json
import logging
import pickle
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from heartcodec_lab.audio.stream import ChunkStream
from heartcodec_lab.encoders.base import AudioEncoder
from heartcodec_lab.tokenize.inputs import InputFile
from heartcodec_lab.tokenize.pipeline import ChunkSource, FileResult, trim_heap

COLUMNS = ("i", "kind", "k", "info", "sha", "stage", "error")


def import_ray():
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ImportError(
            "backend=ray needs Ray: pip install 'heartcodec-lab[ray]' (or pip install 'ray[data]')"
        ) from err
    return ray


@dataclass(frozen=True)
class RaySettings:
    """``address`` and the ``ray:`` group of ``conf/tokenize.yaml``."""

    address: str | None = None
    num_encoders: int | None = None
    gpus_per_encoder: float | None = None
    cpus_per_encoder: float = 1.0
    cpus_per_decode: float = 1.0
    num_cpus: int | None = None
    object_store_mb: int | None = None
    max_restarts: int = -1

    @classmethod
    def from_config(cls, cfg: Mapping) -> RaySettings:
        group = dict(cfg.get("ray") or {})
        values = {
            k: group[k]
            for k in (
                "num_encoders",
                "gpus_per_encoder",
                "cpus_per_encoder",
                "cpus_per_decode",
                "num_cpus",
                "object_store_mb",
                "max_restarts",
            )
            if group.get(k) is not None
        }
        return cls(address=cfg.get("address") or None, **values)


# -- decode: one CPU task per file ----------------------------------------------------------------------------
@dataclass
class DecodeFile:
    """Row ``{"i", "item"}`` -> one row per chunk (``kind`` chunk / last) or one ``fail`` row."""

    native_rate: int
    chunk_samples: int
    block_seconds: float

    def __call__(self, row: dict) -> Iterator[dict]:
        torch.set_num_threads(1)
        item: InputFile = pickle.loads(row["item"])
        source = ChunkSource([item], self.native_rate, self.chunk_samples, self.block_seconds)
        for msg in source._one(0):
            out = {
                "i": int(row["i"]),
                "kind": msg[0],
                "k": -1,
                "audio": b"",
                "info": "",
                "sha": "",
                "stage": "",
                "error": "",
            }
            if msg[0] == "fail":
                out.update(stage=msg[2], error=msg[3])
            else:
                out.update(k=int(msg[2]), audio=msg[3].to(torch.float32).numpy().tobytes())
                if msg[0] == "last":
                    out.update(info=json.dumps(asdict(msg[4])), sha=msg[5] or "")
            yield out


# -- encode: an actor pool, one encoder each ----------------------------------------------------------------
class EncodeChunks:
    """One encoder per actor; a batch of chunk rows -> the same rows with ``codes`` (int64 ``[8, F]`` bytes)."""

    def __init__(self, factory, threads: int = 1):
        torch.set_num_threads(max(1, int(threads)))
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.encoder: AudioEncoder = factory().to(self.device).eval()
        self.shortcut = type(self.encoder).encode_last_chunk is not AudioEncoder.encode_last_chunk

    def __call__(self, batch: dict) -> dict:
        enc = self.encoder
        n = len(batch["i"])
        out = {c: list(batch[c]) for c in COLUMNS}
        codes: list[bytes] = [b""] * n
        frames = [0] * n
        together, alone = [], []
        for j in range(n):
            if out["kind"][j] == "fail":
                continue
            chunk = torch.from_numpy(np.frombuffer(batch["audio"][j], np.float32).reshape(2, -1).copy())
            if out["kind"][j] == "last":
                info = json.loads(out["info"][j])
                left = (
                    enc.num_frames(info["native_samples"], enc.native_sample_rate)
                    - int(out["k"][j]) * enc.frames_per_chunk
                )
                if self.shortcut and 0 < left < enc.frames_per_chunk:
                    alone.append(([j], lambda c=chunk, f=left: enc.encode_last_chunk(c[None].to(self.device), f)))
                    continue
            together.append((j, chunk))
        groups = alone
        if together:
            stacked = lambda: torch.stack([c for _, c in together]).to(self.device)
            groups = [([j for j, _ in together], lambda: enc.encode_chunks(stacked()))] + alone
        for rows, features in groups:
            try:
                with torch.no_grad():
                    result = enc.quantize(features()).cpu()  # [B, 8, F]
                trim_heap()
            except Exception as err:  # noqa: BLE001  (e.g. out of memory: these files fail, the job goes on)
                last = traceback.format_exception_only(type(err), err)[-1].strip()
                for j in rows:
                    out["kind"][j], out["stage"][j], out["error"][j] = "fail", "encode", f"encoder failed: {last}"
                continue
            for j, c in zip(rows, result):
                codes[j], frames[j] = c.to(torch.int64).numpy().tobytes(), int(c.shape[-1])
        arrays = {c: np.asarray(out[c]) for c in COLUMNS}
        arrays["codes"] = np.asarray(codes, dtype=object)
        arrays["frames"] = np.asarray(frames, dtype=np.int64)
        return arrays


# -- back on the driver ---------------------------------------------------------------------------------------
@dataclass
class _Parts:
    chunks: dict = field(default_factory=dict)
    end: tuple | None = None  # (ChunkStream, sha, n_chunks) once the last chunk is in


class Reassembly:
    """Encoded rows (in any order, duplicates from retried tasks allowed) -> one :class:`FileResult` per file."""

    def __init__(self, items: list[InputFile], encoder: AudioEncoder):
        self.items, self.encoder = items, encoder
        self.parts: dict[int, _Parts] = {}
        self.closed: set[int] = set()  # files already handed on (finished or failed)

    def add(self, row: Mapping) -> Iterator[FileResult]:
        i = int(row["i"])
        if i in self.closed:
            return
        if row["kind"] == "fail":
            self.parts.pop(i, None)
            self.closed.add(i)
            yield FileResult(i, self.items[i], stage=str(row["stage"]), error=str(row["error"]))
            return
        p = self.parts.setdefault(i, _Parts())
        k = int(row["k"])
        p.chunks[k] = torch.from_numpy(np.frombuffer(row["codes"], np.int64).reshape(8, int(row["frames"])).copy())
        if row["kind"] == "last":
            p.end = (ChunkStream(**json.loads(row["info"])), row["sha"] or None, k + 1)
        if p.end is not None and len(p.chunks) == p.end[2]:
            info, sha, n = self.parts.pop(i).end
            self.closed.add(i)
            enc = self.encoder
            n_frames = enc.num_frames(info.native_samples, enc.native_sample_rate)
            tokens = torch.cat([p.chunks[c] for c in range(n)], dim=1)[:, :n_frames]
            yield FileResult(i, self.items[i], tokens=tokens, info=info, sha256=sha)

    def missing(self) -> Iterator[FileResult]:
        """Files the pipeline finished without completing (should not happen): failed, so a rerun retries them."""
        for i in sorted(set(range(len(self.items))) - self.closed):
            yield FileResult(i, self.items[i], stage="encode", error="lost in the Ray job (not every chunk came back)")


# -- the stream the job runs -----------------------------------------------------------------------------------
class FixedEncoder:
    """A factory handing each actor a copy of an encoder built by the caller (tests, notebooks)."""

    def __init__(self, encoder: AudioEncoder):
        self.encoder = encoder.cpu()

    def __call__(self) -> AudioEncoder:
        return self.encoder


class ConfiguredEncoder:
    """A factory building the configured codec + encoder inside each actor (nothing large is shipped)."""

    def __init__(self, plain_cfg: dict):
        self.plain_cfg = plain_cfg

    def __call__(self) -> AudioEncoder:
        from omegaconf import OmegaConf

        from heartcodec_lab.tokenize.runner import build_encoder

        return build_encoder(OmegaConf.create(self.plain_cfg), torch.device("cpu"))


class RayStream:
    """:func:`.pipeline.tokenize_stream`'s contract on Ray: files in, one :class:`FileResult` per file out."""

    def __init__(self, settings: RaySettings, factory):
        self.settings, self.factory = settings, factory

    def __call__(
        self,
        encoder: AudioEncoder,
        items: list[InputFile],
        batch_chunks: int = 1,
        num_workers: int = 0,
        device=None,
        block_seconds: float = 10.0,
    ) -> Iterator[FileResult]:
        if not items:
            return
        ray = import_ray()
        started = connect(ray, self.settings)
        try:
            dataset = self.pipeline(ray, encoder, items, batch_chunks, block_seconds)
            assembly = Reassembly(items, encoder)
            for row in dataset.iter_rows():
                yield from assembly.add(row)
            yield from assembly.missing()
        finally:
            if started:
                ray.shutdown()

    def pipeline(self, ray, encoder: AudioEncoder, items: list[InputFile], batch_chunks: int, block_seconds: float):
        s = self.settings
        gpus = float(ray.cluster_resources().get("GPU", 0))
        per_gpu = s.gpus_per_encoder if s.gpus_per_encoder is not None else (1.0 if gpus else 0.0)
        actors = s.num_encoders or (max(1, int(gpus // per_gpu)) if per_gpu else 1)
        rows = [{"i": i, "item": pickle.dumps(item)} for i, item in enumerate(items)]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))  # one decoding task per file
        ds = ds.flat_map(
            DecodeFile(encoder.native_sample_rate, encoder.chunk_samples, block_seconds), num_cpus=s.cpus_per_decode
        )
        extra = {"max_restarts": s.max_restarts, "max_task_retries": -1 if s.max_restarts else 0}
        return ds.map_batches(
            EncodeChunks,
            fn_constructor_args=(self.factory, max(1, int(s.cpus_per_encoder))),
            batch_size=batch_chunks,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=s.cpus_per_encoder,
            num_gpus=per_gpu,
            **extra,
        )


def connect(ray, s: RaySettings) -> bool:
    """Join ``s.address`` or start a local instance; True when this call started Ray (and must stop it)."""
    if ray.is_initialized():
        return False
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the job shows its own, one bar for the whole job
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if s.address:  # a cluster (auto, HOST:6379) or Ray Client (ray://HOST:10001), which takes fewer settings
        extra = {} if s.address.startswith("ray://") else {"log_to_driver": False}
        ray.init(address=s.address, **extra)
    else:
        store = int(s.object_store_mb * 2**20) if s.object_store_mb else None
        for attempt in range(3):  # a loaded machine can miss Ray's 30 s start-up deadline for the raylet
            try:
                ray.init(num_cpus=s.num_cpus, object_store_memory=store, include_dashboard=False, log_to_driver=False)
                break
            except Exception as err:  # Ray raises a bare Exception for this
                ray.shutdown()
                if attempt == 2 or "timed out during startup" not in str(err):
                    raise
    return True


def run_ray(cfg, encoder: AudioEncoder | None = None, console=None):
    """``backend=ray``: this process's shard (normally the whole input) through Ray; returns its ShardSummary.

    The driver builds the encoder on CPU only to fingerprint it (resume and provenance rules); each actor
    builds its own from the config, or gets a copy of ``encoder`` when one is given.
    """
    from omegaconf import OmegaConf

    from heartcodec_lab.tokenize.job import run_shard
    from heartcodec_lab.tokenize.job_config import TokenizeJob
    from heartcodec_lab.tokenize.runner import build_encoder

    import_ray()
    if encoder is None:
        factory = ConfiguredEncoder(OmegaConf.to_container(cfg, resolve=True))
        encoder = build_encoder(cfg, torch.device("cpu"))
    else:
        factory = FixedEncoder(encoder)
        try:
            import ray.cloudpickle

            ray.cloudpickle.dumps(factory)
        except Exception as err:  # torch refuses to pickle weight-norm parametrizations
            raise ValueError(
                f"this {type(encoder).__name__} cannot be shipped to Ray actors ({str(err).splitlines()[0]}); "
                "leave the encoder to the config (codec.path / encoder.path): each actor then builds its own"
            ) from err
    stream = RayStream(RaySettings.from_config(cfg), factory)
    return run_shard(
        TokenizeJob.from_config(cfg),
        encoder,
        int(cfg.shard),
        int(cfg.num_shards),
        device="cpu",
        console=console,
        stream=stream,
    )
