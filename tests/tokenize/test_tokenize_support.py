"""Shared helpers for the tokenizer tests (no tests here): a cheap deterministic stand-in encoder,
synthetic music folders and a corpus of bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from omegaconf import OmegaConf
from vector_quantize_pytorch import ResidualVQ

from heartcodec_lab.encoders.base import AudioEncoder

REPO = Path(__file__).resolve().parents[2]


class StandInEncoder(AudioEncoder):
    """Same interface and frame rule as the real encoders, but tiny: 2 s chunks at 24 kHz (25 frames),
    features = a fixed random projection of each 80 ms stereo frame, real (random) ResidualVQ."""

    native_sample_rate = 24000
    chunk_samples = 48000
    frames_per_chunk = 25
    encoder_id = "stand-in"

    def __init__(self, seed: int = 0, batch_chunks: int = 1, codebook_size: int = 256):
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        rvq = ResidualVQ(dim=512, codebook_size=codebook_size, num_quantizers=8, codebook_dim=8).eval()
        super().__init__(rvq, batch_chunks)
        self.proj = torch.nn.Parameter(torch.randn(2 * 1920, 512, generator=g) / 20, requires_grad=False)

    def encode_chunks(self, chunks: torch.Tensor) -> torch.Tensor:
        b = chunks.shape[0]
        frames = (
            chunks.reshape(b, 2, self.frames_per_chunk, 1920).permute(0, 2, 1, 3).reshape(b, self.frames_per_chunk, -1)
        )
        return frames @ self.proj

    def describe(self) -> dict:
        return {"encoder": self.encoder_id, "chunk_samples": self.chunk_samples}


def job_config(input_dir=None, output_dir=None, **overrides):
    """The tokenize.yaml settings (without Hydra), with overrides."""
    raw = OmegaConf.load(REPO / "conf" / "tokenize.yaml")
    raw.pop("defaults")
    raw.pop("hydra", None)
    cfg = OmegaConf.merge(
        raw, {"codec": {"path": None}, "encoder": {"kind": "official", "path": None, "batch_chunks": 1}}
    )
    cfg.input = str(input_dir) if input_dir else None
    cfg.output = str(output_dir)
    cfg.progress = False
    cfg.num_workers = 0
    cfg.device = "cpu"
    for k, v in overrides.items():
        OmegaConf.update(cfg, k, v, force_add=True)
    return cfg


def tone(seconds: float, sr: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """[S, C] float32: a chord plus noise (deterministic)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    base = 0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t) + 0.2 * np.sin(2 * np.pi * 331 * t + seed)
    x = np.stack([base * (1 + 0.2 * c) for c in range(channels)], 1) + 0.05 * rng.standard_normal((len(t), channels))
    return x.astype(np.float32)


def write(path: Path, data: np.ndarray, sr: int, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, **kw)
    return path


def make_music_folder(root: Path) -> dict:
    """A small varied input folder; returns {rel: expectation}."""
    from heartcodec_lab.data.synth import synth_music

    music = synth_music(3.0, seed=1).numpy().T
    write(root / "album" / "song.flac", music, 48000)
    (root / "album" / "song.txt").write_text("pop, piano, upbeat\n")
    (root / "album" / "song.lyrics").write_text("[Verse]\nla la la\n")
    write(root / "song.mp3", tone(2.5, 44100, 1, seed=2), 44100)  # same stem as the ogg: must not collide
    write(root / "song.ogg", tone(1.7, 22050, 2, seed=3), 22050)
    (root / "song.ogg.unused").write_text("not audio extension")
    write(root / "long.wav", tone(4.6, 32000, 2, seed=4), 32000)  # three 2-s chunks at the native rate
    write(root / "silence.wav", np.zeros((24000, 2), np.float32), 48000)  # silence is valid audio
    write(root / "eight.wav", tone(0.6, 48000, 2, seed=5), 48000)  # exactly 8 frames: int(0.6*12.5)+1
    return {"album/song.flac", "song.mp3", "song.ogg", "long.wav", "silence.wav", "eight.wav"}


def make_bad_corpus(root: Path) -> dict:
    """Bad files; returns {rel: expected stage}."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty.wav").write_bytes(b"")
    (root / "text.mp3").write_text("this is a text file, not audio " * 20)
    (root / "garbage.flac").write_bytes(np.random.default_rng(0).bytes(5000))
    good = write(root / "_tmp.wav", tone(2.0, 48000, 2), 48000, subtype="PCM_16")
    raw = good.read_bytes()
    (root / "truncated.wav").write_bytes(raw[: len(raw) // 2])
    flac = write(root / "_tmp.flac", tone(3.0, 48000, 2), 48000)
    raw = flac.read_bytes()
    (root / "truncated.flac").write_bytes(raw[: len(raw) // 2])
    good.unlink()
    flac.unlink()
    nan = tone(1.0, 48000, 2)
    nan[30000, 1] = np.nan
    write(root / "nan.wav", nan, 48000, subtype="FLOAT")
    write(root / "short.wav", tone(0.05, 48000, 2), 48000)  # 50 ms < one 80 ms frame
    write(root / "zero_frames.wav", np.zeros((0, 2), np.float32), 48000)
    return {
        "empty.wav": "read",
        "text.mp3": "read",
        "garbage.flac": "read",
        "truncated.wav": "read",
        "truncated.flac": "read",
        "nan.wav": "check",
        "short.wav": "check",
        "zero_frames.wav": "check",
    }


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def snapshot(out: Path) -> dict:
    """Everything a dataset consumer sees: final files' bytes and every token file's bytes."""
    snap = {}
    for name in ("metadata.jsonl", "failures.jsonl", "dataset_info.json", "multidatabackend.json"):
        # the dataset's own absolute path (in multidatabackend.json) differs between copies
        snap[name] = (out / name).read_bytes().replace(str(out.resolve()).encode(), b"<OUT>")
    for p in sorted((out / "tokens").rglob("*")):
        if p.is_file():
            snap[p.relative_to(out).as_posix()] = p.read_bytes()
    return snap


def simpletuner_sample_dataset(root: Path) -> Path:
    """Tokenize the SimpleTuner sample folder (tags+lyrics, an instrumental, an exactly-8-frame clip) into root/out."""
    from heartcodec_lab.tokenize.runner import run

    src = root / "in"
    write(src / "a" / "vocal.flac", tone(1.3, 48000, 2, seed=1), 48000)
    (src / "a" / "vocal.txt").write_text("female vocal, pop")
    (src / "a" / "vocal.lyrics").write_text("[Chorus]\nsing along")
    write(src / "inst.wav", tone(2.2, 44100, 1, seed=2), 44100)  # no tags, no lyrics: the placeholders
    write(src / "clip8.wav", tone(0.6, 48000, 2, seed=3), 48000)  # exactly 8 frames: padded to 9
    assert run(job_config(src, root / "out"), encoder=StandInEncoder()) == 0
    return root / "out"
