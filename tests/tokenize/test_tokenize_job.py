"""The bulk job end to end with the stand-in encoder: dataset layout, records, bad files, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_tokenize_support import (
    StandInEncoder,
    job_config,
    make_bad_corpus,
    make_music_folder,
    read_jsonl,
    snapshot,
    tone,
    write,
)

from heartcodec_lab.audio import load_audio
from heartcodec_lab.tokenize.records import RECORD_FIELDS
from heartcodec_lab.tokenize.runner import run


@pytest.fixture(scope="module")
def encoder():
    return StandInEncoder()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, encoder):
    root = tmp_path_factory.mktemp("job")
    good = make_music_folder(root / "in")
    bad = make_bad_corpus(root / "in" / "bad")
    code = run(job_config(root / "in", root / "out"), encoder=encoder)
    return root, good, bad, code


def test_layout_and_records(dataset, encoder):
    root, good, bad, code = dataset
    out = root / "out"
    assert code == 0
    for name in ("metadata.jsonl", "failures.jsonl", "dataset_info.json", "multidatabackend.json"):
        assert (out / name).is_file(), name
    rows = read_jsonl(out / "metadata.jsonl")
    assert [r["file_name"] for r in rows] == sorted(f"audio/{g}" for g in good)
    for r in rows:
        assert set(RECORD_FIELDS) <= set(r)
        rel = r["file_name"].removeprefix("audio/")
        assert r["audio_tokens_path"] == f"tokens/{rel}.npy"
        assert (out / r["file_name"]).resolve() == (root / "in" / rel).resolve()
        arr = np.load(out / r["audio_tokens_path"])
        assert arr.dtype == np.int16 and arr.shape == (8, r["frames"])
        audio, sr = load_audio(root / "in" / rel, channels="keep")
        expected = encoder.encode(audio, sr).tokens.numpy()
        if r["pad_frames"]:
            expected = np.concatenate([expected, expected[:, -1:]], axis=1)
        assert np.array_equal(arr, expected), rel
        assert r["sample_rate"] == sr and r["channels"] == audio.shape[0]
        assert r["duration_s"] == pytest.approx(audio.shape[-1] / sr) and r["num_samples"] == audio.shape[-1]
        assert r["encoder"].startswith("stand-in@") and len(r["audio_sha256"]) == 64
    by = {r["file_name"]: r for r in rows}
    song = by["audio/album/song.flac"]
    # tags in the released convention, the text as given kept beside them; lyrics keep their markers
    assert (song["tags"], song["tags_raw"], song["lyrics"]) == (
        "pop,piano,upbeat",
        "pop, piano, upbeat",
        "[Verse]\nla la la",
    )
    assert by["audio/song.mp3"]["tags_raw"] is None and r["embedded"] == "codec,encoder"
    assert not song["default_tags"] and not song["instrumental"]
    assert by["audio/song.mp3"]["tags"] == "music" and by["audio/song.mp3"]["lyrics"] == "[Instrumental]"
    assert by["audio/song.mp3"]["audio_tokens_path"] != by["audio/song.ogg"]["audio_tokens_path"]
    eight = by["audio/eight.wav"]
    assert eight["frames"] == 9 and eight["pad_frames"] == 1  # 8 encoder frames + 1 repeated
    assert all(r["pad_frames"] == 0 for r in rows if r is not eight)
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["counts"]["files"] == len(good) and info["counts"]["failed"] == len(bad)
    assert info["counts"]["default_tags"] == len(good) - 1
    assert info["frames"] == sum(r["frames"] for r in rows)
    assert info["encoder_fingerprint"] == rows[0]["encoder"]


def test_every_bad_file_gets_one_failure_line(dataset):
    root, good, bad, _ = dataset
    fails = read_jsonl(root / "out" / "failures.jsonl")
    assert sorted(f["file_name"] for f in fails) == sorted(f"audio/bad/{b}" for b in bad)
    for f in fails:
        assert set(f) == {"file_name", "stage", "error"}
        assert f["stage"] == bad[f["file_name"].removeprefix("audio/bad/")], f
        assert f["error"]
    errors = {f["file_name"].rsplit("/", 1)[1]: f["error"] for f in fails}
    assert "empty" in errors["empty.wav"] and "truncated" in errors["truncated.wav"]
    assert "non-finite" in errors["nan.wav"] and "too short" in errors["short.wav"]
    assert not list((root / "out" / "tokens").rglob("bad/*"))


def test_rerun_skips_everything_and_changes_nothing(dataset, encoder, tmp_path):
    root, good, bad, _ = dataset
    out = root / "out"
    before = snapshot(out)
    calls = []
    orig = encoder.encode_chunks
    encoder.encode_chunks = lambda c: calls.append(c.shape[0]) or orig(c)
    try:
        assert run(job_config(root / "in", out), encoder=encoder) == 0
    finally:
        del encoder.encode_chunks
    assert calls == []  # nothing re-encoded
    assert snapshot(out) == before


def test_changed_audio_is_redone_and_edited_tags_refreshed(tmp_path, encoder):
    src = tmp_path / "in"
    write(src / "a.wav", tone(1.0, 48000, 2, seed=1), 48000)
    write(src / "b.wav", tone(1.5, 48000, 2, seed=2), 48000)
    out = tmp_path / "out"
    assert run(job_config(src, out), encoder=encoder) == 0
    first = {r["file_name"]: r for r in read_jsonl(out / "metadata.jsonl")}
    write(src / "a.wav", tone(2.0, 48000, 2, seed=9), 48000)  # new content
    (src / "b.txt").write_text("jazz, brass")  # tags only
    calls = []
    orig = encoder.encode_chunks
    encoder.encode_chunks = lambda c: calls.append(c.shape[0]) or orig(c)
    try:
        assert run(job_config(src, out), encoder=encoder) == 0
    finally:
        del encoder.encode_chunks
    rows = read_jsonl(out / "metadata.jsonl")
    assert [r["file_name"] for r in rows] == ["audio/a.wav", "audio/b.wav"]  # no duplicates
    a, b = rows
    assert a["audio_sha256"] != first["audio/a.wav"]["audio_sha256"] and a["frames"] == 25  # 2 s = one full chunk
    assert np.load(out / a["audio_tokens_path"]).shape == (8, 25)
    assert (
        b["tags"] == "jazz,brass"
        and not b["default_tags"]
        and b["audio_sha256"] == first["audio/b.wav"]["audio_sha256"]
    )
    assert sum(calls) == 1  # only a.wav's single chunk was encoded again


def test_manifest_input(tmp_path, encoder):
    data = tmp_path / "data"
    write(data / "x" / "one.wav", tone(1.0, 48000, 2, seed=1), 48000)
    write(data / "two.flac", tone(1.2, 44100, 1, seed=2), 44100)
    (data / "two.txt").write_text("ambient")
    rows = [
        {"path": "x/one.wav", "tags": "rock", "lyrics": "hello"},
        {"path": str(data / "two.flac")},
        {"path": "missing.wav", "tags": "t"},
    ]
    manifest = data / "list.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert run(job_config(manifest, out), encoder=encoder) == 0
    meta = {r["file_name"]: r for r in read_jsonl(out / "metadata.jsonl")}
    assert set(meta) == {"audio/x/one.wav", "audio/two.flac"}
    assert (meta["audio/x/one.wav"]["tags"], meta["audio/x/one.wav"]["lyrics"]) == ("rock", "hello")
    assert meta["audio/two.flac"]["tags"] == "ambient"  # sidecar when the manifest has none
    for name in meta:
        assert (out / name).resolve() == (data / name.removeprefix("audio/")).resolve()
    fails = read_jsonl(out / "failures.jsonl")
    assert [f["file_name"] for f in fails] == ["audio/missing.wav"] and "not found" in fails[0]["error"]

    csv = data / "list.csv"
    csv.write_text("path,tags,lyrics\nx/one.wav,rock,hello\n")
    out2 = tmp_path / "out2"
    assert run(job_config(csv, out2), encoder=encoder) == 0
    assert np.array_equal(np.load(out2 / "tokens/x/one.wav.npy"), np.load(out / "tokens/x/one.wav.npy"))


def test_exit_codes(tmp_path, encoder):
    bad = tmp_path / "bad"
    make_bad_corpus(bad)
    assert run(job_config(bad, tmp_path / "o1"), encoder=encoder) == 1  # nothing succeeded
    (tmp_path / "empty").mkdir()
    assert run(job_config(tmp_path / "empty", tmp_path / "o2"), encoder=encoder) == 1
    write(bad / "ok.wav", tone(0.5, 48000, 2), 48000)
    assert run(job_config(bad, tmp_path / "o3"), encoder=encoder) == 0
    assert run(job_config(bad, tmp_path / "o3", strict=True), encoder=encoder) == 1


def test_silence_is_tokenized(tmp_path, encoder):
    write(tmp_path / "in" / "quiet.wav", np.zeros((48000, 1), np.float32), 48000)
    assert run(job_config(tmp_path / "in", tmp_path / "out"), encoder=encoder) == 0
    arr = np.load(tmp_path / "out" / "tokens" / "quiet.wav.npy")
    expected = encoder.encode(torch.zeros(1, 48000), 48000).tokens.numpy()
    assert np.array_equal(arr, expected)


def test_output_inside_or_equal_to_input(tmp_path, encoder):
    from heartcodec_lab.tokenize.simpletuner import check_dataset

    src = tmp_path / "music"
    write(src / "a.wav", tone(0.7, 48000, 2), 48000)
    inside = src / "tokenized"
    for _ in range(2):  # the second run must not pick up the dataset's own files (or its audio link)
        assert run(job_config(src, inside), encoder=encoder) == 0
    assert [r["file_name"] for r in read_jsonl(inside / "metadata.jsonl")] == ["audio/a.wav"]
    assert read_jsonl(inside / "failures.jsonl") == []
    check_dataset(inside)

    assert run(job_config(src, src), encoder=encoder) == 0  # the dataset is the input folder itself
    rows = read_jsonl(src / "metadata.jsonl")
    assert [r["file_name"] for r in rows] == ["a.wav"] and not (src / "audio").exists()
    check_dataset(src)
