"""CPU cost of the full-size official encoder (vqv12) on one 29.76 s stereo chunk.

Builds the released architecture with random weights (transformers configs built
locally, nothing downloaded), runs one chunk (714240 samples + the 240-sample tail)
through feature extraction and the query encoder, and prints seconds per stage,
parameters and peak RSS next to the reference implementation's figures
(``fixtures/encoder-tiny/timing_full_cpu.json``).

    .venv/bin/python benchmarks/bench_encoder.py [--threads 2] [--mono] [--baseline] [--json out.json]

Stage timers and the released code path: ``heartcodec_lab.encoders.official.timing``.

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

import torch

from heartcodec_lab.encoders.official import VQV12Encoder, released_config
from heartcodec_lab.encoders.official.timing import instrument, parameter_counts, released_path_forward, timed
from heartcodec_lab.tables import print_table

REFERENCE = {"seconds_per_chunk": 82.4, "peak_rss_gib": 4.18, "parameters": 536_970_736}
CHUNK = 714240 + 240


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


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
    parameters = parameter_counts(model)

    g = torch.Generator().manual_seed(0)
    audio = torch.randn(1, 1 if args.mono else 2, CHUNK, generator=g) * 0.1
    audio = audio.expand(1, 2, CHUNK).contiguous()
    timer, wavlm_timer = instrument(model)
    features, seconds, cpu_seconds = timed(model, audio)
    assert features.shape == (1, 372, 512)
    stages = dict(timer.seconds)
    stages["wavlm"] = wavlm_timer.seconds
    stages["whisper feature extractor + rest"] = seconds - sum(stages.values())
    baseline = None
    if args.baseline:
        timer.remove()
        wavlm_timer.remove()
        reference_features, wall, cpu = timed(released_path_forward, model, audio)
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
