"""heartcodec_lab.encoders.official.timing (what benchmarks/bench_encoder.py times), on the embedded tiny encoder."""

from __future__ import annotations

import torch

from heartcodec_lab.encoders.official import build_embedded_encoder, embedded_tiny_config
from heartcodec_lab.encoders.official.timing import instrument, parameter_counts, released_path_forward, timed

SHORT = 24 * 1920 + 240  # a 1.92 s chunk with its tail: the same code path as 29.76 s


def _audio(batch: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return 0.1 * torch.randn(batch, 2, SHORT, generator=g)


def test_released_path_gives_the_same_features_as_the_encoder():
    """Eager attention, every layer and both channels through the conv front end: same 512-d features."""
    model = build_embedded_encoder()
    configs = (model.feature_extractors.muencoder.conformer.config, model.feature_extractors.whisper_encoder.config)
    before = [c._attn_implementation for c in configs]
    audio = _audio(batch=2)
    ours, _, _ = timed(model, audio)
    released, wall, cpu = timed(released_path_forward, model, audio)
    assert released.shape == ours.shape == (2, 24, embedded_tiny_config()["query"]["dim"])
    torch.testing.assert_close(released, ours, rtol=1e-4, atol=1e-4)
    assert wall > 0 and cpu > 0
    assert [c._attn_implementation for c in configs] == before  # the attention setting is restored


def test_stage_timers_see_every_stage_once_hooked_and_nothing_after_removal():
    model = build_embedded_encoder()
    timer, wavlm = instrument(model)
    timed(model, _audio())
    stages = dict(timer.seconds)
    assert set(stages) == {
        "muencoder mel",
        "muencoder conv2d subsampling",
        "muencoder conformer",
        "resample 24k -> 16k",
        "whisper encoder",
        "query encoder",
    }
    assert all(seconds > 0 for seconds in stages.values())
    assert wavlm.seconds > 0
    timer.remove()
    wavlm.remove()
    timed(model, _audio())
    assert dict(timer.seconds) == stages  # no hook left behind


def test_parameter_counts_add_up():
    model = build_embedded_encoder()
    counts = parameter_counts(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    parts = sum(v for k, v in counts.items() if k != "total")
    assert 0 < parts <= counts["total"]
