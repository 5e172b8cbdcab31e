"""Where the vqv12 encoder spends its time, for ``benchmarks/bench_encoder.py``.

* :func:`instrument`: wall seconds per stage (MuEncoder mel, conv front end, conformer, resampling, WavLM,
  Whisper encoder, query encoder) summed by forward hooks over one call;
* :func:`released_path_forward`: the released code path (eager attention, every layer computed, the conv
  front end on both channels, no mono shortcut), so a benchmark can time both paths in one process;
  its features equal :class:`VQV12Encoder`'s (tested on the embedded encoder);
* :func:`timed` and :func:`parameter_counts`.
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch

from .model import VQV12Encoder


class StageTimer:
    """Wall seconds spent inside chosen submodules (forward pre/post hooks), summed per stage name."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._start: dict[int, float] = {}
        self.handles = []

    def watch(self, stage: str, module: torch.nn.Module) -> None:
        key = id(module)

        def start(*_):
            self._start[key] = time.perf_counter()

        def stop(*_):
            self.seconds[stage] += time.perf_counter() - self._start[key]

        self.handles += [module.register_forward_pre_hook(start), module.register_forward_hook(stop)]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


class WavLMTimer:
    """WavLM runs piecewise (feature extractor, projection, layers): timed from its first piece to layer 9's end."""

    def __init__(self, model: VQV12Encoder):
        from .config import WAVLM_AVERAGED_STATES

        wavlm = model.feature_extractors.wavlm_encoder
        self.seconds = 0.0
        self._start = 0.0
        last = wavlm.encoder.layers[max(WAVLM_AVERAGED_STATES) - 1].final_layer_norm
        self.handles = [
            wavlm.feature_extractor.register_forward_pre_hook(lambda *_: setattr(self, "_start", time.perf_counter())),
            last.register_forward_hook(lambda *_: setattr(self, "seconds", time.perf_counter() - self._start)),
        ]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


def instrument(model: VQV12Encoder) -> tuple[StageTimer, WavLMTimer]:
    """Hooks on every stage of ``model``; read ``timer.seconds`` (per stage) and ``wavlm.seconds`` after a call."""
    timer = StageTimer()
    fx = model.feature_extractors
    timer.watch("muencoder mel", fx.muencoder.preprocessor_melspec_2048)
    timer.watch("muencoder conv2d subsampling", fx.muencoder.conv)
    for layer in fx.muencoder.conformer.layers:
        timer.watch("muencoder conformer", layer)
    timer.watch("resample 24k -> 16k", fx.resample_24k_to_16k)
    timer.watch("whisper encoder", fx.whisper_encoder)
    timer.watch("query encoder", model.query)
    return timer, WavLMTimer(model)


def released_path_forward(model: VQV12Encoder, audio: torch.Tensor) -> torch.Tensor:
    """``[B, 2, S]`` 24 kHz chunks -> ``[B, frames, dim]`` features the way the released code computes them.

    Eager attention, every layer computed (conformer layers + final LayerNorm, WavLM's whole library forward
    with all hidden states), the conv front end on both channels at once, no mono shortcut.
    """
    from .config import CONFORMER_ACOUSTIC_STATE, CONFORMER_SEMANTIC_STATE, WAVLM_AVERAGED_STATES
    from .frontends import SAMPLES_PER_50HZ, TAIL_SAMPLES, stereo_layout

    fx = model.feature_extractors
    mu = fx.muencoder
    rows = audio.flatten(0, 1)
    eager = [mu.conformer.config, fx.whisper_encoder.config]
    saved = [c._attn_implementation for c in eager]
    for c in eager:
        c._attn_implementation = "eager"
    try:
        hidden = mu.conv((mu.mel_db(rows) - mu.mean) / mu.std)
        rotary = mu.conformer.embed_positions(hidden)
        states = [hidden]
        for layer in mu.conformer.layers:
            hidden = layer(hidden, None, rotary)
            states.append(hidden)
        mu.conformer.layer_norm(hidden)
        resampled = fx.resample_16k(rows)
        wavlm_states = fx.wavlm_encoder(resampled, output_hidden_states=True).hidden_states
        wavlm = torch.stack([wavlm_states[i] for i in WAVLM_AVERAGED_STATES], 1).mean(1)
        whisper = fx.whisper_encoder(fx.whisper_log_mel(resampled)).last_hidden_state
    finally:
        for c, value in zip(eager, saved):
            c._attn_implementation = value
    frames = (audio.shape[-1] - TAIL_SAMPLES) // SAMPLES_PER_50HZ
    whisper = whisper[:, :frames].unflatten(1, (-1, 2)).mean(2)
    wavlm = wavlm.unflatten(1, (-1, 2)).mean(2)
    streams = (states[CONFORMER_ACOUSTIC_STATE], states[CONFORMER_SEMANTIC_STATE], whisper, wavlm)
    return model.query(*(stereo_layout(s, audio.shape[0]) for s in streams))


def timed(fn, *args) -> tuple[torch.Tensor, float, float]:
    """``fn(*args)`` under inference mode -> (result, wall seconds, process CPU seconds)."""
    with torch.inference_mode():
        start, cpu_start = time.perf_counter(), time.process_time()
        out = fn(*args)
        return out, time.perf_counter() - start, time.process_time() - cpu_start


def parameter_counts(model: VQV12Encoder) -> dict[str, int]:
    """Parameters per sub-model and ``total``."""
    fx = model.feature_extractors
    parts = {
        "whisper encoder": fx.whisper_encoder,
        "wavlm": fx.wavlm_encoder,
        "muencoder": fx.muencoder,
        "query encoder": model.query,
    }
    counts = {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}
    counts["total"] = sum(p.numel() for p in model.parameters())
    return counts
