"""CPU cost of the full-size official encoder (vqv12) on one 29.76 s stereo chunk.

Builds the released architecture with random weights (transformers configs built
locally, nothing downloaded), runs one chunk (714240 samples + the 240-sample tail)
through feature extraction and the query encoder, and prints seconds per stage,
parameters and peak RSS next to the reference implementation's figures
(``fixtures/encoder-tiny/timing_full_cpu.json``).

    .venv/bin/python benchmarks/bench_encoder.py [--threads 2] [--mono] [--baseline] [--json out.json]

``--baseline`` also times the released code path (eager attention, every layer, no mono
shortcut) in the same process, which compares fairly on a shared machine where wall
times move with the load. Takes a few minutes and about 4 GB of memory on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections import defaultdict

import torch

from heartcodec_lab.encoders.official import VQV12Encoder, released_config
from heartcodec_lab.tables import print_table

REFERENCE = {"seconds_per_chunk": 82.4, "peak_rss_gib": 4.18, "parameters": 536_970_736}
CHUNK = 714240 + 240


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


class StageTimer:
    """Wall time spent inside chosen submodules (forward pre/post hooks), summed per stage."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self._start = {}
        self.handles = []

    def watch(self, stage: str, module: torch.nn.Module) -> None:
        key = id(module)
        self.handles.append(
            module.register_forward_pre_hook(lambda *_: self._start.__setitem__(key, time.perf_counter()))
        )
        self.handles.append(
            module.register_forward_hook(
                lambda *_: self.seconds.__setitem__(stage, self.seconds[stage] + time.perf_counter() - self._start[key])
            )
        )

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def instrument(model: VQV12Encoder) -> StageTimer:
    timer = StageTimer()
    fx = model.feature_extractors
    timer.watch("muencoder mel", fx.muencoder.preprocessor_melspec_2048)
    timer.watch("muencoder conv2d subsampling", fx.muencoder.conv)
    for layer in fx.muencoder.conformer.layers:
        timer.watch("muencoder conformer", layer)
    timer.watch("resample 24k -> 16k", fx.resample_24k_to_16k)
    timer.watch("whisper encoder", fx.whisper_encoder)
    timer.watch("query encoder", model.query)
    return timer


def baseline_forward(model: VQV12Encoder, audio: torch.Tensor) -> torch.Tensor:
    """The released code path, for a same-machine comparison: eager attention, every layer
    computed (conformer 12 + final LayerNorm, WavLM's full library forward with all hidden
    states), the conv front end on both channels at once, no mono shortcut."""
    from heartcodec_lab.encoders.official.frontends import SAMPLES_PER_50HZ, TAIL_SAMPLES, stereo_layout

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
        wavlm = torch.stack(wavlm_states[6:10], 1).mean(1)
        whisper = fx.whisper_encoder(fx.whisper_log_mel(resampled)).last_hidden_state
    finally:
        for c, value in zip(eager, saved):
            c._attn_implementation = value
    frames = (audio.shape[-1] - TAIL_SAMPLES) // SAMPLES_PER_50HZ
    whisper = whisper[:, :frames].unflatten(1, (-1, 2)).mean(2)
    wavlm = wavlm.unflatten(1, (-1, 2)).mean(2)
    streams = (states[2], states[11], whisper, wavlm)
    return model.query(*(stereo_layout(s, audio.shape[0]) for s in streams))


def timed(fn, *args) -> tuple[torch.Tensor, float, float]:
    """(result, wall seconds, process CPU seconds)."""
    with torch.inference_mode():
        start, cpu_start = time.perf_counter(), time.process_time()
        out = fn(*args)
        return out, time.perf_counter() - start, time.process_time() - cpu_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mono", action="store_true", help="identical channels (computed once)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--baseline", action="store_true", help="also time the released code path in this process (same load)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    start = time.perf_counter()
    torch.manual_seed(0)
    model = VQV12Encoder(released_config())
    build_seconds = time.perf_counter() - start
    rss_after_build = peak_rss_gib()
    parts = {
        "whisper encoder": model.feature_extractors.whisper_encoder,
        "wavlm": model.feature_extractors.wavlm_encoder,
        "muencoder": model.feature_extractors.muencoder,
        "query encoder": model.query,
    }
    parameters = {name: sum(p.numel() for p in part.parameters()) for name, part in parts.items()}
    parameters["total"] = sum(p.numel() for p in model.parameters())

    g = torch.Generator().manual_seed(0)
    audio = torch.randn(1, 1 if args.mono else 2, CHUNK, generator=g) * 0.1
    audio = audio.expand(1, 2, CHUNK).contiguous()
    timer = instrument(model)
    wavlm_timer = WavLMTimer(model)
    features, seconds, cpu_seconds = timed(model, audio)
    assert features.shape == (1, 372, 512)
    stages = dict(timer.seconds)
    stages["wavlm"] = wavlm_timer.seconds
    stages["whisper feature extractor + rest"] = seconds - sum(stages.values())
    baseline = None
    if args.baseline:
        timer.remove()
        wavlm_timer.remove()
        reference_features, wall, cpu = timed(baseline_forward, model, audio)
        baseline = {
            "seconds_per_chunk": wall,
            "cpu_seconds_per_chunk": cpu,
            "max_abs_difference": (reference_features - features).abs().max().item(),
        }

    result = {
        "threads": args.threads,
        "channels": "mono (identical)" if args.mono else "stereo",
        "seconds_per_chunk": seconds,
        "cpu_seconds_per_chunk": cpu_seconds,
        "realtime_factor": seconds / 29.76,
        "stage_seconds": stages,
        "parameters": parameters,
        "build_seconds": build_seconds,
        "peak_rss_gib_after_build": rss_after_build,
        "peak_rss_gib": peak_rss_gib(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "torch": torch.__version__,
        "baseline_same_process": baseline,
    }
    report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


class WavLMTimer:
    """WavLM runs piecewise (feature extractor, projection, layers), so time it from its first to last piece."""

    def __init__(self, model: VQV12Encoder):
        wavlm = model.feature_extractors.wavlm_encoder
        self.seconds = 0.0
        self._start = 0.0
        last = wavlm.encoder.layers[8].final_layer_norm
        self.handles = [
            wavlm.feature_extractor.register_forward_pre_hook(lambda *_: setattr(self, "_start", time.perf_counter())),
            last.register_forward_hook(lambda *_: setattr(self, "seconds", time.perf_counter() - self._start)),
        ]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def report(result: dict) -> None:
    title = (
        f"official encoder (vqv12), full size, one 29.76 s {result['channels']} chunk, "
        f"{result['threads']} threads, float32"
    )
    rows = [
        ("seconds per chunk", f"{result['seconds_per_chunk']:.1f}", f"{REFERENCE['seconds_per_chunk']:.1f}"),
        ("CPU seconds, all threads (load-robust)", f"{result['cpu_seconds_per_chunk']:.1f}", "not recorded"),
        (
            "x real time (time / 29.76 s)",
            f"{result['realtime_factor']:.2f}",
            f"{REFERENCE['seconds_per_chunk'] / 29.76:.2f}",
        ),
        ("parameters", f"{result['parameters']['total']:,}", f"{REFERENCE['parameters']:,}"),
        ("peak RSS GiB", f"{result['peak_rss_gib']:.2f}", f"{REFERENCE['peak_rss_gib']:.2f}"),
        ("peak RSS GiB after build", f"{result['peak_rss_gib_after_build']:.2f}", "2.59"),
    ]
    rows += [(f"  {stage} s", f"{value:.1f}", "") for stage, value in result["stage_seconds"].items()]
    rows += [(f"  params {name}", f"{value:,}", "") for name, value in result["parameters"].items() if name != "total"]
    if result["baseline_same_process"]:
        base = result["baseline_same_process"]
        rows += [
            ("released code path here: seconds per chunk", f"{base['seconds_per_chunk']:.1f}", ""),
            ("released code path here: CPU seconds", f"{base['cpu_seconds_per_chunk']:.1f}", ""),
            ("  max |difference| of the 512-d features", f"{base['max_abs_difference']:.1e}", ""),
        ]
    loads = " / ".join(f"{x:.1f}" for x in (result["loadavg_before"][0], result["loadavg_after"][0]))
    rows.append(("load average before / after", loads, "1.6 / 2.6"))
    print_table(("measure", "this toolkit", "reference"), rows, title=title)


if __name__ == "__main__":
    main()
