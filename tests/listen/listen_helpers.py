"""Small listening tests made from synthetic music and cheap signal changes (no codec), for the listen tests."""

from __future__ import annotations

from pathlib import Path

import torch

from heartcodec_lab.audio import save_audio
from heartcodec_lab.data.synth import synth_music

SR = 48000


def make_sources(root: Path, n: int = 2, seconds: float = 1.5) -> tuple[Path, dict[str, Path]]:
    """reference/song_k.flac plus two condition folders of the same names: ``quiet`` (the reference at
    -6 dB: loudness matching must undo it) and ``noisy`` (white noise added at about -20 dB)."""
    ref, quiet, noisy = root / "reference", root / "quiet", root / "noisy"
    gen = torch.Generator().manual_seed(0)
    for k in range(n):
        audio = synth_music(seconds, seed=20 + k, sample_rate=SR, peak=0.5)
        save_audio(ref / f"song_{k}.flac", audio, SR)
        save_audio(quiet / f"song_{k}.wav", audio * 0.5, SR)
        save_audio(noisy / f"song_{k}.wav", audio + 0.05 * torch.randn(audio.shape, generator=gen), SR)
    return ref, {"quiet": quiet, "noisy": noisy}


def make_test(root: Path, n: int = 2, seconds: float = 1.5, **kwargs) -> Path:
    from heartcodec_lab.listen import prepare_test

    ref, conditions = make_sources(root / "sources", n, seconds)
    prepare_test(root / "test", ref, conditions, seconds=seconds, **kwargs)
    return root / "test"
