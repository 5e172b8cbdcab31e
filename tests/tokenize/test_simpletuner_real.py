"""SimpleTuner itself reads a heartcodec-tokenize dataset: its data backend, parquet metadata backend and
HeartMuLa collate, in its own environment (opt-in: ``HEARTCODEC_TEST_SIMPLETUNER=1``, ``./run test-simpletuner``).

SimpleTuner needs Python >= 3.12 and brings its own torch, so it gets its own virtual environment under
``$HEARTCODEC_CACHE/simpletuner-4.10.1`` (first run: ``pip install simpletuner==4.10.1``, about 8 GB and
many minutes; later runs reuse it). The interpreter: ``$HEARTCODEC_SIMPLETUNER_PYTHON``, else
``python3.13`` / ``python3.12`` on PATH, else a pyenv 3.12+, else ``uv python find``. Without one the
test is skipped. ``simpletuner_driver.py`` runs inside that environment; this side checks what
SimpleTuner saw against the dataset files and against the package's own restatement of SimpleTuner's
rules (``heartcodec_lab.tokenize.simpletuner``, the fast test in ``test_tokenize_simpletuner.py``).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from encoder_fixture import cache_root
from test_tokenize_support import read_jsonl, simpletuner_sample_dataset

from heartcodec_lab.tokenize.simpletuner import check_dataset

VERSION = "4.10.1"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.simpletuner,
    pytest.mark.skipif(
        os.environ.get("HEARTCODEC_TEST_SIMPLETUNER") != "1",
        reason="opt-in: set HEARTCODEC_TEST_SIMPLETUNER=1 (or run ./run test-simpletuner)",
    ),
]


def find_python312() -> str | None:
    candidates = [
        os.environ.get("HEARTCODEC_SIMPLETUNER_PYTHON"),
        shutil.which("python3.13"),
        shutil.which("python3.12"),
    ]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python")), reverse=True)
    if shutil.which("uv"):
        found = subprocess.run(["uv", "python", "find", ">=3.12"], capture_output=True, text=True)
        candidates.append(found.stdout.strip() if found.returncode == 0 else None)
    for python in filter(None, candidates):
        probe = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info >= (3, 12))"], capture_output=True, text=True
        )
        if probe.stdout.strip() == "True":
            return python
    return None


def installed_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.is_file():
        return None
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('simpletuner'))"],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


@pytest.fixture(scope="module")
def simpletuner_python() -> Path:
    venv = cache_root() / f"simpletuner-{VERSION}"
    if installed_version(venv) != VERSION:
        python = find_python312()
        if python is None:
            pytest.skip("SimpleTuner needs Python >= 3.12 and none was found (set HEARTCODEC_SIMPLETUNER_PYTHON)")
        subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"simpletuner=={VERSION}"], check=True, timeout=7200
        )
        assert installed_version(venv) == VERSION
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return simpletuner_sample_dataset(tmp_path_factory.mktemp("st-real"))


def test_simpletuner_reads_the_dataset_and_collates_its_tokens(simpletuner_python, dataset, fixtures_dir, tmp_path):
    out = tmp_path / "seen.json"
    driver = Path(__file__).with_name("simpletuner_driver.py")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [str(simpletuner_python), str(driver), str(dataset), str(fixtures_dir), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    seen = json.loads(out.read_text())
    rows = sorted(read_jsonl(dataset / "metadata.jsonl"), key=lambda r: r["file_name"])
    # every dataset row was discovered on disk through the audio link and matched to its metadata
    assert seen["files"] == [r["file_name"] for r in rows]
    restated = {s["file_name"]: s for s in check_dataset(dataset)}
    tokens = np.array(seen["tokens"])  # [B, L, 9]
    mask = np.array(seen["audio_frame_mask"])  # [B, L]
    for b, (row, example) in enumerate(zip(rows, seen["examples"])):
        assert example == {"tags": row["tags"], "lyrics": row["lyrics"], "audio_tokens_path": row["audio_tokens_path"]}
        assert example["lyrics"].strip()  # instrumentals carry the placeholder SimpleTuner keeps
        start, length = seen["prompt_lengths"][b], seen["audio_lengths"][b]
        assert length == row["frames"]  # SimpleTuner trains every stored frame, padding included
        audio = tokens[b, start : start + length, :8]
        stored = np.load(dataset / row["audio_tokens_path"]).astype(np.int64)
        assert np.array_equal(audio, stored.T)  # it transposed [8, T] itself
        assert np.array_equal(audio, restated[row["file_name"]]["tokens"])  # the package's restatement agrees
        assert mask[b].sum() == length and mask[b, start : start + length].all()
        assert (tokens[b, :start, :8] == seen["empty_id"]).all()  # the prompt rows carry text only
