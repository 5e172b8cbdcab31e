"""The opt-in torch.compile of the estimator: off by default, reachable from the config, same numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from heartcodec_lab.codec import DetokenizeSettings, load_codec
from heartcodec_lab.codec.compiling import compile_estimator, is_compiled

#: inductor vs eager on the tiny estimator, float32 (fused/reordered sums: rounding only)
ATOL, RTOL = 1e-5, 1e-4


@pytest.fixture
def codec(fixtures_dir):
    return load_codec(fixtures_dir / "ckpt-tiny" / "HeartCodec-oss")


def test_compile_is_off_by_default(codec):
    assert not is_compiled(codec.flow_matching.estimator)
    assert DetokenizeSettings().compile is False
    assert DetokenizeSettings.from_mapping({"num_steps": 2}).compile is False


def test_config_key_reaches_the_estimator_once(codec, monkeypatch):
    calls = []

    def fake_compile(self, **kwargs):  # record instead of compiling (the real one is the slow test)
        calls.append((self, kwargs))
        self._compiled_call_impl = self._call_impl

    monkeypatch.setattr(nn.Module, "compile", fake_compile)
    settings = DetokenizeSettings.from_mapping({"num_steps": 1, "duration": 7.44, "compile": True})
    codes = torch.randint(0, 64, (8, 100), generator=torch.Generator().manual_seed(0))
    settings.decode(codec, codes)
    settings.decode(codec, codes)
    assert [c[0] for c in calls] == [codec.flow_matching.estimator]
    assert calls[0][1]["backend"] == "inductor"
    assert is_compiled(load_codec(None, compile=True).flow_matching.estimator)


def test_compile_flag_must_be_a_boolean():
    with pytest.raises(ValueError, match="detokenize.compile must be true or false"):
        DetokenizeSettings.from_mapping({"compile": "yes"})


@pytest.mark.slow
def test_compiled_estimator_equals_eager(codec):
    """Real inductor compilation of the tiny estimator (about a minute of CPU, needs a C++ compiler)."""
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(2, 186, codec.config.in_channels, generator=g)
    t = torch.tensor([0.3, 0.7])
    with torch.inference_mode():
        eager = codec.flow_matching.estimator(hidden, timestep=t)
        compile_estimator(codec)
        compiled = codec.flow_matching.estimator(hidden, timestep=t)
        again = codec.flow_matching.estimator(hidden * 0.5, timestep=t)
        # _call_impl is the eager forward even on a compiled module (the compiled path wraps it)
        eager_again = codec.flow_matching.estimator._call_impl(hidden * 0.5, timestep=t)
    assert is_compiled(codec.flow_matching.estimator)
    torch.testing.assert_close(compiled, eager, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(again, eager_again, atol=ATOL, rtol=RTOL)
    assert not torch.equal(again, compiled)


def test_evaluation_records_keep_their_key_unless_compile_is_on():
    from heartcodec_lab.evaluate.settings import decoder_settings, digest

    before = {"num_steps": 10, "guidance_scale": 1.25, "duration": 29.76, "seed": 0}
    assert digest(decoder_settings({**before, "compile": False})) == digest(before)
    assert digest(decoder_settings({**before, "compile": True})) != digest(before)
