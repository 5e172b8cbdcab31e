"""The library below the jobs is plain Python + torch: no Lightning, no Hydra (usable from a notebook)."""

from __future__ import annotations

import subprocess
import sys

LIBRARY = ["audio", "codec", "encoders", "losses", "mula", "data", "listen"]

PROBE = """
import importlib, pkgutil, sys
names = []
for pkg in {packages!r}:
    module = importlib.import_module("heartcodec_lab." + pkg)
    names.append(module.__name__)
    for info in pkgutil.walk_packages(module.__path__, module.__name__ + "."):
        importlib.import_module(info.name)
        names.append(info.name)
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & {{"lightning", "pytorch_lightning", "hydra"}})
print(len(names), ",".join(loaded) or "none")
"""


def test_library_packages_import_without_lightning_or_hydra():
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(packages=LIBRARY)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    count, loaded = out.stdout.split()
    assert int(count) > 40  # every module of those packages, command-line modules included
    assert loaded == "none", f"the library imported {loaded}"
