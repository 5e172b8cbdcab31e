"""LightningDataModule: audio folders or manifests (or synthetic music) -> crops for the projection.

* training: random crops (:class:`RandomCropDataset`) handed out by :class:`ResumableSampler`,
  which numbers samples globally across steps and ranks, so a resumed or multi-process run
  sees exactly the crops an uninterrupted single run would see at the same step;
* validation: a few fixed clips (:class:`FixedClipDataset`), the same every epoch;
* no ``train_dir``/``train_manifest``: synthetic music (the embedded-codec demo), synthesized
  once into ``synth.cache_dir``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
from torch.utils.data import DataLoader, Sampler

from heartcodec_lab.audio.rates import SAMPLE_RATE
from heartcodec_lab.data.datasets import FixedClipDataset, RandomCropDataset, synth_folder


class ResumableSampler(Sampler[int]):
    """Global sample numbers for this rank: batch ``c`` of rank ``r`` is samples ``(c*W + r)*B .. +B``.

    ``start_batch()`` returns how many batches the run has already consumed (restored from the
    checkpoint on resume); iteration starts there and stops at the end of the current epoch
    (epochs are ``batches_per_epoch`` batches long).
    """

    def __init__(
        self,
        batches_per_epoch: int,
        batch_size: int,
        start_batch: Callable[[], int] = lambda: 0,
        rank: Callable[[], int] = lambda: 0,
        world_size: Callable[[], int] = lambda: 1,
    ):
        self.batches_per_epoch = batches_per_epoch
        self.batch_size = batch_size
        self.start_batch = start_batch
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size

    def __iter__(self):
        start = int(self.start_batch())
        end = (start // self.batches_per_epoch + 1) * self.batches_per_epoch
        world, rank, b = self.world_size(), self.rank(), self.batch_size
        for c in range(start, end):
            first = (c * world + rank) * b
            yield from range(first, first + b)


def _files_from(folder: str | None, manifest: str | None, what: str) -> list[Path]:
    from heartcodec_lab.data.files import find_audio_files, read_manifest

    if folder and manifest:
        raise ValueError(f"give either {what}_dir or {what}_manifest, not both")
    if folder:
        files = find_audio_files(folder)
        if not files:
            raise FileNotFoundError(f"{folder}: no audio files found for {what}")
        return files
    if manifest:
        files = [item.path for item in read_manifest(manifest)]
        if not files:
            raise ValueError(f"{manifest}: manifest lists no audio files for {what}")
        return files
    return []


class AudioDataModule(pl.LightningDataModule):
    """Crops of 48 kHz stereo audio.

    Args:
        train_dir / train_manifest: training audio (folder scanned recursively, or a JSONL/CSV manifest
            with a ``path`` column). Neither: synthetic music (see ``synth``).
        val_dir / val_manifest: held-out audio; neither: the last ``num_val_clips`` training files are
            held out (or, with too few files, validation reuses training files, with a warning).
        crop_seconds: training crop length (rounded down to whole 80 ms token frames).
        val_seconds: validation clip length; val_offset_seconds: where clips start in each file.
        channels: "stereo" (mono sources duplicated) or "mono" (downmix, then duplicate).
        samples_per_epoch: crops per epoch over all ranks (an epoch is when validation may run).
        synth: ``{num_files, num_val_files, seconds, seed, cache_dir}`` for the synthetic data.
    """

    def __init__(
        self,
        train_dir: str | None = None,
        train_manifest: str | None = None,
        val_dir: str | None = None,
        val_manifest: str | None = None,
        crop_seconds: float = 2.0,
        val_seconds: float = 4.0,
        val_offset_seconds: float = 0.0,
        num_val_clips: int = 4,
        batch_size: int = 4,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        samples_per_epoch: int = 256,
        channels: str = "stereo",
        sample_rate: int = SAMPLE_RATE,
        seed: int = 0,
        synth: dict | None = None,
    ):
        super().__init__()
        self.train_dir, self.train_manifest = train_dir, train_manifest
        self.val_dir, self.val_manifest = val_dir, val_manifest
        self.crop_seconds, self.val_seconds, self.val_offset_seconds = crop_seconds, val_seconds, val_offset_seconds
        self.num_val_clips = num_val_clips
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.samples_per_epoch = samples_per_epoch
        self.channels = channels
        self.sample_rate = sample_rate
        self.seed = seed
        self.synth = dict(synth or {})
        self.train_set: RandomCropDataset | None = None
        self.val_set: FixedClipDataset | None = None

    @property
    def uses_synthetic(self) -> bool:
        return not (self.train_dir or self.train_manifest)

    def _synth_dirs(self) -> tuple[Path, Path]:
        s = {"num_files": 8, "num_val_files": 2, "seconds": 8.0, "seed": 0, "cache_dir": "~/.cache/heartcodec_lab"}
        s.update(self.synth)
        train = synth_folder(s["cache_dir"], "train", s["num_files"], s["seconds"], s["seed"])
        # validation pieces use other seeds, so they are never training material
        val = synth_folder(s["cache_dir"], "val", s["num_val_files"], s["seconds"], s["seed"] + 10_000)
        return train, val

    def prepare_data(self) -> None:
        # runs on one process per machine before setup(): the only place that writes files
        if self.uses_synthetic:
            self._synth_dirs()

    def _world(self) -> tuple[int, int]:
        t = getattr(self, "trainer", None)
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def _batches_consumed(self) -> int:
        t = getattr(self, "trainer", None)
        module = getattr(t, "lightning_module", None) if t is not None else None
        return int(getattr(module, "batches_seen", 0)) if module is not None else 0

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.uses_synthetic:
            train_dir, val_dir = self._synth_dirs()
            train_files, val_files = _files_from(str(train_dir), None, "train"), _files_from(str(val_dir), None, "val")
        else:
            train_files = _files_from(self.train_dir, self.train_manifest, "train")
            val_files = _files_from(self.val_dir, self.val_manifest, "val")
            if not val_files:
                if len(train_files) > self.num_val_clips:
                    train_files, val_files = train_files[: -self.num_val_clips], train_files[-self.num_val_clips :]
                else:
                    warnings.warn(
                        f"only {len(train_files)} training files and no val_dir/val_manifest: "
                        "validation reuses training files",
                        stacklevel=2,
                    )
                    val_files = list(train_files)
        self.train_set = RandomCropDataset(
            train_files, self.crop_seconds, self.samples_per_epoch, self.seed, self.sample_rate, self.channels
        )
        self.val_set = FixedClipDataset(
            val_files, self.val_seconds, self.num_val_clips, self.val_offset_seconds, self.sample_rate, self.channels
        )

    def _loader(self, dataset, batch_size: int, sampler=None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            persistent_workers=False,
            drop_last=False,
            pin_memory=False,
        )

    def train_dataloader(self) -> DataLoader:
        _, world = self._world()
        per_step = self.batch_size * world
        batches = max(1, -(-self.samples_per_epoch // per_step))
        sampler = ResumableSampler(
            batches,
            self.batch_size,
            start_batch=self._batches_consumed,
            rank=lambda: self._world()[0],
            world_size=lambda: self._world()[1],
        )
        return self._loader(self.train_set, self.batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size)
