"""The suite itself: a checkout without ``../shared`` skips the fixture tests with a reason instead of failing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_fixture_tests_skip_with_a_reason_when_the_shared_folder_is_absent(tmp_path):
    env = {**os.environ, "HEARTCODEC_FIXTURES": str(tmp_path / "no-shared")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "0",
            "-rs",
            "tests/codec/test_codec_flow.py::test_module_names_are_the_checkpoint_keys",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "1 skipped" in proc.stdout and "reference fixtures not found" in proc.stdout
