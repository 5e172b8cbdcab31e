"""Time HeartMuLa generation (seconds per 80 ms frame) and teacher-forced scoring.

python benchmarks/bench_mula.py                                   # embedded tiny model, CPU
python benchmarks/bench_mula.py --path ckpt/HeartMuLa-oss-3B --device cuda --frames 64
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from heartcodec_lab.mula import GenerationConfig, frame_nll, generate_tokens, load_mula


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default=None, help="HeartMuLa folder (default: embedded tiny model)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bundle = load_mula(args.path, device=args.device, dtype=args.dtype)
    tags, lyrics = "pop, piano, upbeat", "[verse]\nthe sun creeps in across the floor\n[chorus]\nevery day"
    report = {"model": bundle.describe(), "device": str(bundle.device), "dtype": str(bundle.dtype)}
    for cfg_scale in (1.0, 1.5):
        cfg = GenerationConfig(max_frames=args.frames, topk=50, cfg_scale=cfg_scale)
        generate_tokens(bundle, tags, lyrics, GenerationConfig(max_frames=2, cfg_scale=cfg_scale), progress=False)
        _sync(bundle.device)
        start = time.perf_counter()
        result = generate_tokens(bundle, tags, lyrics, cfg, progress=False, seed=0)
        _sync(bundle.device)
        seconds = time.perf_counter() - start
        report[f"generate_cfg{cfg_scale}_s_per_frame"] = seconds / max(1, result.new_frames)
        report[f"generate_cfg{cfg_scale}_real_time_factor"] = seconds / (max(1, result.new_frames) * 0.08)
    start = time.perf_counter()
    frame_nll(bundle, result.tokens, tags, lyrics)
    _sync(bundle.device)
    report["score_frames_per_s"] = result.tokens.shape[1] / (time.perf_counter() - start)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
