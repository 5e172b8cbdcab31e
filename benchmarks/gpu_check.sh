#!/usr/bin/env bash
# GPU check: tokenize, detokenize and one training step on a CUDA device, throughput and peak GPU memory
# per stage, stopped after 5 minutes. Without a CUDA device it says so and exits 0.
#   benchmarks/gpu_check.sh [--quick] [--stage tokenize|detokenize|train ...]   (see benchmarks/gpu_check.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no CUDA device on this machine (torch.cuda.is_available() is false): nothing to check"
  exit 0
fi
exec timeout --signal=INT --kill-after=10 "${GPU_CHECK_TIMEOUT:-300}" "$PY" benchmarks/gpu_check.py "$@"
