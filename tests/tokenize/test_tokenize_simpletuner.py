"""A tokenized dataset read by SimpleTuner's rules: its parquet/JSONL metadata backend and HeartMuLa loader."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from test_tokenize_support import read_jsonl, simpletuner_sample_dataset

from heartcodec_lab.tokenize.simpletuner import SimpleTunerCheckError, check_dataset, load_tokens_like_simpletuner

AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "opus", "mp3", "m4a", "aac", "aiff", "wma", "alac")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return simpletuner_sample_dataset(tmp_path_factory.mktemp("st"))


def test_check_dataset_accepts_every_row(dataset):
    samples = check_dataset(dataset)
    assert sorted(s["file_name"] for s in samples) == ["audio/a/vocal.flac", "audio/clip8.wav", "audio/inst.wav"]
    for s in samples:
        assert s["tokens"].ndim == 2 and s["tokens"].shape[1] == 8 and s["tokens"].shape[0] != 8
        assert s["tags"].strip() and s["lyrics"].strip()


def test_parquet_backend_view(dataset):
    """What SimpleTuner's parquet metadata backend does with multidatabackend.json + metadata.jsonl."""
    backend = json.loads((dataset / "multidatabackend.json").read_text())
    assert isinstance(backend, list) and len(backend) == 1
    cfg = backend[0]
    assert cfg["dataset_type"] == "audio" and cfg["metadata_backend"] == "parquet" and cfg["type"] == "local"
    pq = cfg["parquet"]
    root = cfg["instance_data_dir"]
    table = pd.read_json(pq["path"], lines=pq["path"].endswith(".jsonl"))
    table = table.set_index(pq["filename_column"])
    # file discovery: audio files under instance_data_dir, symlinks followed
    found = []
    for dirpath, _, files in os.walk(root, followlinks=True):
        found += [os.path.join(os.path.abspath(dirpath), f) for f in files if f.lower().endswith(AUDIO_EXTENSIONS)]
    assert found
    keyed = {}
    for path in found:
        key = path.replace(root, "")
        key = key[1:] if key.startswith("/") else key
        assert pq["identifier_includes_extension"]
        keyed[key] = table.loc[key]  # every discovered file has its row
    assert sorted(keyed) == sorted(table.index)
    for row in keyed.values():
        caption, lyrics = row[pq["caption_column"]], row[pq["lyrics_column"]]
        assert isinstance(caption, str) and caption.strip()
        assert isinstance(lyrics, str) and lyrics.strip()  # empty lyrics would be dropped, then refused
        tokens = load_tokens_like_simpletuner(os.path.join(root, row["audio_tokens_path"]))
        assert tokens.shape == (row["frames"], 8)
        for col in (
            "audio_sample_rate_column",
            "audio_duration_column",
            "audio_channels_column",
            "audio_num_samples_column",
        ):
            assert pq[col] in row.index


def test_instrumental_and_default_tags(dataset):
    rows = {r["file_name"]: r for r in read_jsonl(dataset / "metadata.jsonl")}
    inst = rows["audio/inst.wav"]
    assert inst["lyrics"] == "[Instrumental]" and inst["instrumental"]
    assert inst["tags"] == "music" and inst["default_tags"]
    clip = rows["audio/clip8.wav"]
    arr = np.load(dataset / clip["audio_tokens_path"])
    assert arr.shape == (8, 9) and np.array_equal(arr[:, 8], arr[:, 7]) and clip["pad_frames"] == 1


@pytest.mark.parametrize(
    "array,problem",
    [
        (np.zeros((8, 8), np.int16), "ambiguous"),
        (np.zeros((8, 20), np.float32), "integers"),
        (np.zeros((8, 20, 1), np.int16), "2-D"),
        (np.full((8, 20), 8192, np.int16), "outside"),
        (np.zeros((7, 20), np.int16), "no dimension"),
    ],
)
def test_loader_rejects_what_simpletuner_rejects(tmp_path, array, problem):
    np.save(tmp_path / "t.npy", array)
    with pytest.raises(SimpleTunerCheckError, match=problem):
        load_tokens_like_simpletuner(tmp_path / "t.npy")


def test_loader_accepts_both_layouts(tmp_path):
    codes = np.arange(8 * 20).reshape(8, 20).astype(np.int16)
    np.save(tmp_path / "a.npy", codes)
    np.save(tmp_path / "b.npy", codes.T)
    assert np.array_equal(
        load_tokens_like_simpletuner(tmp_path / "a.npy"), load_tokens_like_simpletuner(tmp_path / "b.npy")
    )


def test_check_dataset_names_the_bad_row(dataset, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy, symlinks=True)
    rows = read_jsonl(copy / "metadata.jsonl")
    rows[1]["lyrics"] = ""
    (copy / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SimpleTunerCheckError, match=r"metadata.jsonl:2: lyrics"):
        check_dataset(copy)
    rows[1]["lyrics"] = "1999"
    (copy / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SimpleTunerCheckError, match=r"metadata.jsonl:2: lyrics '1999' looks like a number"):
        check_dataset(copy)
    rows[1]["lyrics"] = "x"
    rows[2]["audio_tokens_path"] = "tokens/nope.npy"
    (copy / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SimpleTunerCheckError, match=r"metadata.jsonl:3: token file tokens/nope.npy"):
        check_dataset(copy)
