"""Local backend vs ``backend=ray`` on this machine: throughput and overhead per file (docs/scale_out.md).

    python benchmarks/bench_tokenize_ray.py                      # 3 corpora x 2 backends, prints a table
    python benchmarks/bench_tokenize_ray.py --long 8 --long-seconds 20 --short 32

Encoder: the tokenizer's default (the shipped miniature codec's true encoder), one torch thread per
encoder. Local backend: ``num_workers=2`` decoding processes + the encoder in the main process. Ray
backend: a local instance with ``--cpus`` CPUs and a 200 MB object store, two encoder actors
(``cpus_per_encoder=0.5``, one thread each) and decoding tasks (``cpus_per_decode=0.5``).

Corpora (48 kHz stereo FLAC of synthetic music): ``one`` (a single 1 s file: the fixed cost of a job,
for Ray its start), ``short`` (many 1 s files: the cost per file), ``long`` (a few long files: the
encoding rate). Each run is its own child process; CPU seconds are those of the child and every
process below it (Ray's raylet, GCS and workers included), sampled with psutil every 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys, time
import torch
torch.set_num_threads(1)
from hydra import compose, initialize_config_module
from heartcodec_lab.tokenize.job import run_shard
from heartcodec_lab.tokenize.runner import build_encoder
args = json.loads(sys.argv[1])
with initialize_config_module("heartcodec_lab.conf", version_base="1.3"):
    cfg = compose("tokenize", overrides=[f"input_dir={args['src']}", f"output_dir={args['out']}", "progress=false",
                                         "num_workers=2", "device=cpu"] + args["overrides"])
t0 = time.perf_counter()
if args["backend"] == "ray":  # the driver builds one encoder (fingerprint), each actor its own
    from heartcodec_lab.tokenize.ray_backend import run_ray
    s = run_ray(cfg)
else:
    s = run_shard(cfg, build_encoder(cfg, torch.device("cpu")), 0, 1, device="cpu")
print("RESULT", json.dumps({"ok": s.ok, "failed": s.failed, "audio_s": s.seconds, "job_wall_s": time.perf_counter() - t0}))
"""

RAY = [
    "backend=ray",
    "ray.num_cpus=2",
    "ray.object_store_mb=200",
    "ray.num_encoders=2",
    "ray.cpus_per_encoder=0.5",
    "ray.cpus_per_decode=0.5",
]


RAY_DAEMONS = ("gcs_server", "raylet", "dashboard", "monitor.py", "log_monitor", "agent", "runtime_env")


def category(p, driver_pid: int) -> str:
    """driver | workers (decoding processes, Ray tasks and actors) | ray daemons (GCS, raylet, monitors)."""
    if p.pid == driver_pid:
        return "driver"
    cmd = " ".join(p.cmdline())
    if cmd.startswith("ray::") or "default_worker.py" in cmd:
        return "workers"
    if any(d in cmd for d in RAY_DAEMONS):
        return "ray daemons"
    return "workers"


def tree_cpu(proc, seen: dict) -> None:
    import psutil

    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            t = p.cpu_times()
            key = (p.pid, p.create_time())
            kind = seen[key][0] if key in seen else category(p, proc.pid)
            seen[key] = (kind, t.user + t.system)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def run_child(backend: str, src: Path, out: Path) -> dict:
    import psutil

    args = {"backend": backend, "src": str(src), "out": str(out), "overrides": RAY if backend == "ray" else []}
    t0 = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    proc, seen = psutil.Process(child.pid), {}
    while child.poll() is None:
        tree_cpu(proc, seen)
        time.sleep(0.2)
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - t0
    line = next((x for x in stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{backend} run failed:\n{stderr[-3000:]}")
    result = json.loads(line[len("RESULT ") :])
    parts = {
        k: round(sum(c for kind, c in seen.values() if kind == k), 2) for k in ("driver", "workers", "ray daemons")
    }
    return {**result, "wall_s": wall, "cpu_s": sum(c for _, c in seen.values()), **parts}


def write_corpus(folder: Path, files: int, seconds: float) -> None:
    import soundfile as sf

    from heartcodec_lab.data.synth import synth_music

    folder.mkdir(parents=True)
    for i in range(files):
        sf.write(str(folder / f"song{i:03d}.flac"), synth_music(seconds, seed=i).numpy().T, 48000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", type=int, default=32, help="number of 1 s files")
    ap.add_argument("--long", type=int, default=8, help="number of long files")
    ap.add_argument("--long-seconds", type=float, default=20.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--backends", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    ap.add_argument("--corpora", nargs="+", default=["one", "short", "long"], choices=["one", "short", "long"])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpora = {"one": (1, 1.0), "short": (args.short, 1.0), "long": (args.long, args.long_seconds)}
        for name, (files, seconds) in corpora.items():
            write_corpus(Path(tmp) / name, files, seconds)
        for name in args.corpora:
            for backend in args.backends:
                r = run_child(backend, Path(tmp) / name, Path(tmp) / f"out-{name}-{backend}")
                rows.append({"corpus": name, "backend": backend, "files": r["ok"], **r})
                print(json.dumps(rows[-1]), flush=True)
    by = {(r["corpus"], r["backend"]): r for r in rows}
    print(
        "\n| backend | corpus | files | audio s | wall s | CPU s: all | driver | workers | Ray daemons "
        "| audio s / CPU s (driver + workers) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        work = r["driver"] + r["workers"]
        print(
            f"| {r['backend']} | {r['corpus']} | {r['files']} | {r['audio_s']:.0f} | {r['wall_s']:.1f} | "
            f"{r['cpu_s']:.1f} | {r['driver']:.1f} | {r['workers']:.1f} | {r['ray daemons']:.1f} | "
            f"{r['audio_s'] / work:.2f} |"
        )
    if not all((c, b) in by for c in ("one", "short", "long") for b in ("local", "ray")):
        return
    print("\n| backend | fixed cost per job, CPU s | cost per extra 1 s file, CPU s | CPU s per audio s (long files) |")
    print("| --- | --- | --- | --- |")
    for backend in ("local", "ray"):
        one, short, long_ = by[("one", backend)], by[("short", backend)], by[("long", backend)]
        per_file = (short["cpu_s"] - one["cpu_s"]) / max(1, short["files"] - 1)
        per_audio = (long_["cpu_s"] - one["cpu_s"]) / max(1e-9, long_["audio_s"] - one["audio_s"])
        print(f"| {backend} | {one['cpu_s']:.1f} | {per_file:.2f} | {per_audio:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
