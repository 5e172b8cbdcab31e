"""``heartcodec-reconstruct``: embedded default end to end, and one-line failures that write nothing."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from heartcodec_lab.audio import save_audio
from heartcodec_lab.cli.reconstruct import run


@pytest.fixture
def reconstruct_cfg(compose):
    return lambda *overrides: compose("reconstruct", *overrides)


def test_config_defaults_compose(reconstruct_cfg):
    cfg = reconstruct_cfg()
    assert cfg.codec.path is None and cfg.encoder.kind == "minicodec" and cfg.encoder.path is None
    assert cfg.encoder.batch_chunks == 1 and cfg.input is None and cfg.output is None


def test_default_reconstructs_to_48k_stereo_of_the_input_duration(tmp_path, capsys, caplog, reconstruct_cfg):
    caplog.set_level(logging.INFO)
    source = tmp_path / "in.wav"
    t = torch.arange(int(1.5 * 44100)) / 44100
    save_audio(source, (0.3 * torch.sin(2 * torch.pi * 330 * t))[None], 44100)  # 1.5 s mono 44.1 kHz
    target = tmp_path / "sub" / "out.wav"
    assert run(reconstruct_cfg(f"input={source}", f"output={target}", "detokenize.num_steps=1")) == 0
    data, rate = sf.read(str(target), always_2d=True)
    assert rate == 48000 and data.shape == (72000, 2)  # trimmed to 1.5 s
    assert abs(data).max() > 0
    printed = capsys.readouterr().out
    assert "tokens  [8, 19]" in printed  # int(1.5 * 12.5) + 1
    for stage in ("load", "read", "encode", "decode", "write", "realtime factor"):
        assert stage in printed
    said = printed.splitlines() + caplog.messages
    assert len([line for line in said if "detokenize: estimator" in line]) == 1  # the precision line, once
    assert [p.name for p in target.parent.iterdir()] == ["out.wav"]  # no temporary file left


@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "bad_suffix", "no_input"])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, case, reconstruct_cfg):
    source = tmp_path / "in.wav"
    target = tmp_path / "out.wav"
    if case == "empty":
        source.write_bytes(b"")
    elif case == "garbage":
        source.write_bytes(b"this is not audio" * 10)
    elif case == "bad_suffix":
        save_audio(source, torch.zeros(1, 4800), 48000)
        target = tmp_path / "out.xyz"
    overrides = [f"output={target}"] + ([] if case == "no_input" else [f"input={source}"])
    assert run(reconstruct_cfg(*overrides)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("heartcodec-reconstruct: error: ") and "\n" not in err
    named = {"no_input": "input=", "bad_suffix": str(target)}.get(case, str(source))
    assert named in err
    assert not target.exists() and not list(tmp_path.glob("*.tmp-*"))  # no partial file either


def test_console_command_fails_cleanly(tmp_path):
    """The installed Hydra app: non-zero exit, one line naming the file, no traceback, no output."""
    missing, target = tmp_path / "nope.flac", tmp_path / "out.wav"
    exe = Path(sys.executable).with_name("heartcodec-reconstruct")
    proc = subprocess.run(
        [str(exe), f"input={missing}", f"output={target}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"},
        timeout=300,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"{missing}: file not found" in proc.stderr
    assert not target.exists() and list(tmp_path.iterdir()) == []  # no Hydra output folders either
