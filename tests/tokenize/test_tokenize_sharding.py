"""Scale-out: disjoint shards that cover every file once, merge, and one process per device via Fabric."""

from __future__ import annotations

import json
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra
from test_tokenize_support import StandInEncoder, job_config, snapshot, tone, write

from heartcodec_lab.cli import tokenize_merge as merge
from heartcodec_lab.tokenize.inputs import collect_inputs, select_shard
from heartcodec_lab.tokenize.runner import run


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    src = tmp_path_factory.mktemp("shard") / "in"
    for i in range(5):
        write(src / f"d{i % 2}" / f"s{i}.wav", tone(0.4 + 0.3 * i, 48000, 2, seed=i), 48000)
    (src / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    return src


@pytest.fixture(scope="module")
def single(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "out"
    assert run(job_config(corpus, out), encoder=StandInEncoder()) == 0
    return out


def without_shards(snap: dict) -> dict:
    snap = dict(snap)
    info = json.loads(snap.pop("dataset_info.json"))
    info.pop("shards")
    snap["info"] = info
    return snap


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_are_disjoint_and_cover_everything(corpus, n):
    _, items = collect_inputs(str(corpus), None)
    parts = [select_shard(items, i, n) for i in range(n)]
    names = [it.rel for p in parts for it in p]
    assert sorted(names) == sorted(it.rel for it in items) and len(names) == len(set(names)) == 6
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    # deterministic: the same split from a fresh scan
    assert [it.rel for it in select_shard(collect_inputs(str(corpus), None)[1], 0, n)] == [it.rel for it in parts[0]]
    with pytest.raises(ValueError):
        select_shard(items, n, n)


def merge_cli(monkeypatch, *overrides) -> int:
    monkeypatch.setattr(sys, "argv", ["heartcodec-tokenize-merge", *overrides])
    GlobalHydra.instance().clear()
    try:
        merge.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        GlobalHydra.instance().clear()
    return 0


def test_shards_into_one_folder_then_merge_equal_single_run(corpus, single, tmp_path, monkeypatch):
    out = tmp_path / "out"
    enc = StandInEncoder()
    for i in range(2):
        run(job_config(corpus, out, shard=i, num_shards=2), encoder=enc)
        assert not (out / "metadata.jsonl").exists()  # each shard only journals; merge writes the dataset
    assert merge_cli(monkeypatch, f"output={out}") == 0
    assert without_shards(snapshot(out)) == without_shards(snapshot(single))
    assert json.loads((out / "dataset_info.json").read_text())["shards"] == [
        "shard-00000-of-00002",
        "shard-00001-of-00002",
    ]


@pytest.mark.slow  # two spawned interpreters importing torch + encoders: ~20 s idle, minutes on a busy box
def test_fabric_two_cpu_processes_match_single_process(corpus, single, tmp_path):
    out = tmp_path / "out"
    cfg = job_config(
        corpus,
        out,
        **{
            "launcher.enabled": True,
            "launcher.accelerator": "cpu",
            "launcher.devices": 2,
            "launcher.strategy": "ddp_spawn",
        },
    )
    assert run(cfg, encoder=StandInEncoder()) == 0
    assert without_shards(snapshot(out)) == without_shards(snapshot(single))
    assert json.loads((out / "dataset_info.json").read_text())["shards"] == [
        "shard-00000-of-00002",
        "shard-00001-of-00002",
    ]


def test_merge_of_an_empty_folder_fails_clearly(tmp_path, monkeypatch, capsys):
    assert merge_cli(monkeypatch, f"output={tmp_path}") == 2
    assert "nothing was tokenized into it yet" in capsys.readouterr().err
