"""Scale-out pieces that need no cluster: the Ray backend's decode / encode / reassembly steps against the
local pipeline, the local backend without Ray installed, the Hugging Face layout and its converter, and
inputs from fsspec URLs and Hugging Face datasets (all offline). The two-worker Ray job is in
test_tokenize_ray.py (slow)."""

from __future__ import annotations

import json
import pickle
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from test_tokenize_stream import ShortcutEncoder
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

from heartcodec_lab.tokenize.inputs import collect_inputs
from heartcodec_lab.tokenize.pipeline import tokenize_stream
from heartcodec_lab.tokenize.runner import run

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A music folder with a bad-file corpus inside, tokenized once by the local backend (SimpleTuner layout)."""
    root = tmp_path_factory.mktemp("scale")
    good = make_music_folder(root / "in")
    bad = make_bad_corpus(root / "in" / "bad")
    assert run(job_config(root / "in", root / "local"), encoder=StandInEncoder()) == 0
    return root, good, bad


def test_ray_steps_without_a_cluster_equal_the_local_pipeline(corpus):
    """DecodeFile -> EncodeChunks -> Reassembly, rows shuffled and some repeated (as a retried task
    would), give every file the local pipeline's tokens and every bad file its failure stage."""
    from heartcodec_lab.tokenize.ray_backend import DecodeFile, EncodeChunks, FixedEncoder, Reassembly

    root, _, bad = corpus
    _, items = collect_inputs(root / "in", None)
    enc = ShortcutEncoder()  # takes the final-chunk shortcut, as the real projection encoder does
    local = {r.item.rel: r for r in tokenize_stream(enc, items)}
    rows = [
        row
        for i, item in enumerate(items)
        for row in DecodeFile(enc.native_sample_rate, enc.chunk_samples, 10.0)({"i": i, "item": pickle.dumps(item)})
    ]
    random.Random(0).shuffle(rows)
    actor = EncodeChunks(FixedEncoder(enc))
    encoded = []
    for row in rows + rows[:5]:  # five rows delivered twice
        batch = {key: np.asarray([row[key]], dtype=object if key in ("audio",) else None) for key in row}
        out = actor(batch)
        encoded.append({key: value[0] for key, value in out.items()})
    assembly = Reassembly(items, enc)
    results = [res for row in encoded for res in assembly.add(row)]
    results += list(assembly.missing())
    assert sorted(r.item.rel for r in results) == sorted(local) and len(results) == len(items)
    for res in results:
        ref = local[res.item.rel]
        assert res.ok == ref.ok and res.stage == ref.stage, res.item.rel
        if res.ok:
            assert torch.equal(res.tokens, ref.tokens) and res.sha256 == ref.sha256
            assert res.info == ref.info
    assert {r.item.rel.removeprefix("bad/"): r.stage for r in results if not r.ok} == bad
    # a chunk the pipeline never delivers leaves its file failed (a rerun retries it), never half-written
    partial = Reassembly(items, enc)
    first_file = next(r for r in encoded if r["kind"] == "last" and r["k"] > 0)
    for _ in partial.add(first_file):
        pass
    lost = list(partial.missing())
    assert len(lost) == len(items) and all(r.stage == "encode" for r in lost)


def test_local_backend_works_without_ray_and_ray_backend_says_how_to_install(tmp_path):
    src = tmp_path / "in"
    write(src / "a.wav", tone(1.2, 48000, 2), 48000)
    probe = textwrap.dedent(f"""
        import sys
        sys.modules["ray"] = None  # import ray -> ImportError, as on a machine without it
        sys.path.insert(0, {str(TESTS)!r})
        from test_tokenize_support import StandInEncoder, job_config
        import heartcodec_lab.tokenize.ray_backend, heartcodec_lab.tokenize.hf_layout, heartcodec_lab.tokenize.sources
        from heartcodec_lab.tokenize.runner import run
        print("local", run(job_config({str(src)!r}, {str(tmp_path / "out")!r}), encoder=StandInEncoder()))
        try:
            run(job_config({str(src)!r}, {str(tmp_path / "out2")!r}, backend="ray"), encoder=StandInEncoder())
        except ImportError as err:
            print("ray:", err)
    """)
    proc = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "local 0" in proc.stdout
    assert "ray: backend=ray needs Ray: pip install 'heartcodec-lab[ray]'" in proc.stdout
    assert len(read_jsonl(tmp_path / "out" / "metadata.jsonl")) == 1


def test_hf_layout_round_trip_and_load_dataset(corpus, tmp_path):
    datasets = pytest.importorskip("datasets")
    from heartcodec_lab.tokenize.hf_convert import to_hf

    root, good, _ = corpus
    st = root / "local"
    assert to_hf(st, tmp_path / "hf", shard_rows=4) == len(good)
    assert sorted(p.name for p in (tmp_path / "hf" / "data").iterdir()) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    rows = read_jsonl(st / "metadata.jsonl")
    for kwargs in ({"path": str(tmp_path / "hf")}, {"path": "parquet", "data_dir": str(tmp_path / "hf")}):
        ds = datasets.load_dataset(**kwargs, split="train", cache_dir=str(tmp_path / "cache"))
        assert ds.features["tokens"] == datasets.List(datasets.List(datasets.Value("int16")), length=8)
        assert len(ds) == len(rows)
        for r, row in zip(rows, ds):
            arr = np.load(st / r["audio_tokens_path"])
            assert np.array_equal(np.asarray(row["tokens"], np.int16), arr)
            assert {k: row[k] for k in r} == r
            assert Path(row["source_path"]).resolve() == (st / r["file_name"]).resolve()
    # the way back through the console command
    cmd = [
        sys.executable,
        "-m",
        "heartcodec_lab.cli.tokenize_convert",
        f"input={tmp_path / 'hf'}",
        f"output={tmp_path / 'back'}",
        "layout=simpletuner",
    ]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0 and f"{len(good)} rows in the simpletuner layout" in done.stderr, done.stderr[-2000:]
    assert snapshot(tmp_path / "back") == snapshot(st)  # byte-equal tokens, metadata, failures, info, backend
    assert (tmp_path / "back" / "audio").resolve() == (root / "in").resolve()
    with pytest.raises(FileExistsError, match="not empty"):
        to_hf(st, tmp_path / "hf")


def test_layout_hf_job_writes_the_converters_dataset(corpus, tmp_path):
    pytest.importorskip("datasets")
    from heartcodec_lab.tokenize.hf_convert import to_hf
    from heartcodec_lab.tokenize.hf_layout import read_rows

    root, good, bad = corpus
    out = tmp_path / "job"
    assert run(job_config(root / "in", out, layout="hf"), encoder=StandInEncoder()) == 0
    assert not (out / "metadata.jsonl").exists() and not (out / "multidatabackend.json").exists()
    assert len(read_jsonl(out / "failures.jsonl")) == len(bad)
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["config"]["layout"] == "hf" and info["counts"]["files"] == len(good)
    to_hf(root / "local", tmp_path / "converted")
    records, arrays, sources = read_rows(out)
    ref_records, ref_arrays, _ = read_rows(tmp_path / "converted")
    assert records == ref_records and all(np.array_equal(a, b) for a, b in zip(arrays, ref_arrays))
    assert sources == [str((root / "in" / r["file_name"].removeprefix("audio/")).resolve()) for r in records]
    # resuming a layout=hf job skips what is done, as the SimpleTuner layout does
    again = run(job_config(root / "in", out, layout="hf"), encoder=StandInEncoder())
    assert again == 0 and read_rows(out)[0] == records


def _memory_copy(src: Path, url_root: str) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    for p in sorted(src.rglob("*")):
        if p.is_file():
            fs.pipe_file(f"{url_root}/{p.relative_to(src).as_posix()}", p.read_bytes())


def test_fsspec_url_input_equals_the_local_folder_and_resumes(corpus, tmp_path):
    """memory:// (fsspec's in-memory store) and file:// inputs give the local run's rows and tokens."""
    import fsspec

    root, good, bad = corpus
    _memory_copy(root / "in", "/scale-test/in")
    out = tmp_path / "mem"
    assert run(job_config(None, out, input="memory:///scale-test/in"), encoder=StandInEncoder()) == 0
    local, remote = snapshot(root / "local"), snapshot(out)
    assert remote["metadata.jsonl"] == local["metadata.jsonl"]  # same names, tags, lyrics, hashes, frames
    assert {k: v for k, v in remote.items() if k.startswith("tokens/")} == {
        k: v for k, v in local.items() if k.startswith("tokens/")
    }
    fails = {(f["file_name"], f["stage"]) for f in read_jsonl(out / "failures.jsonl")}
    assert fails == {(f"audio/bad/{b}", stage) for b, stage in bad.items()}
    assert not (out / "audio").exists()  # nothing local to link to
    assert json.loads((out / "dataset_info.json").read_text())["input_root"] == "memory:///scale-test/in"
    # rerun: unchanged objects are skipped by their size + version stamp; a changed one is encoded again
    fs = fsspec.filesystem("memory")
    fs.pipe_file(
        "/scale-test/in/long.wav", write(tmp_path / "new.wav", tone(3.1, 32000, 2, seed=9), 32000).read_bytes()
    )
    from heartcodec_lab.tokenize.job import run_shard

    summary = run_shard(job_config(None, out, input="memory:///scale-test/in"), StandInEncoder(), 0, 1)
    assert (summary.ok, summary.skipped, summary.failed) == (1, len(good) - 1, len(bad))
    # file:// is the local folder itself
    out2 = tmp_path / "file"
    assert run(job_config(None, out2, input=f"file://{root / 'in'}"), encoder=StandInEncoder()) == 0
    assert snapshot(out2)["metadata.jsonl"] == local["metadata.jsonl"] and (out2 / "audio").is_symlink()


def test_hugging_face_dataset_input(tmp_path):
    datasets = pytest.importorskip("datasets")
    from heartcodec_lab.audio import load_audio

    files = {"a.flac": (tone(2.3, 48000, 2, seed=1), 48000), "b.wav": (tone(1.1, 44100, 1, seed=2), 44100)}
    payload = {name: write(tmp_path / "src" / name, data, sr).read_bytes() for name, (data, sr) in files.items()}
    ds = datasets.Dataset.from_dict(
        {
            "audio": [
                {"bytes": payload["a.flac"], "path": "a.flac"},
                {"bytes": payload["b.wav"], "path": None},
                {"bytes": b"not audio at all", "path": "c.mp3"},
            ],
            "tags": ["Rock, Guitar", None, "x"],
            "lyrics": ["[Verse]\nhey", None, None],
        },
        features=datasets.Features(
            {
                "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                "tags": datasets.Value("string"),
                "lyrics": datasets.Value("string"),
            }
        ),
    )
    ds = ds.cast_column("audio", datasets.Audio())  # an audio column as the Hub has them (arrow-level cast)
    ds.save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "pq" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "pq" / "data" / "train-00000-of-00001.parquet"))
    enc = StandInEncoder()
    outs = {}
    for label, spec in (("saved", str(tmp_path / "saved")), ("parquet", f"hf:{tmp_path / 'pq'}")):
        out = outs[label] = tmp_path / f"out-{label}"
        assert run(job_config(None, out, input=spec), encoder=enc) == 0
        rows = {r["file_name"]: r for r in read_jsonl(out / "metadata.jsonl")}
        assert sorted(rows) == ["audio/train/00000000_a.flac", "audio/train/00000001"]
        a = rows["audio/train/00000000_a.flac"]
        assert (a["tags"], a["lyrics"]) == ("rock,guitar", "[Verse]\nhey")
        for name, key in (("a.flac", "audio/train/00000000_a.flac"), ("b.wav", "audio/train/00000001")):
            audio, sr = load_audio(tmp_path / "src" / name, channels="keep")
            expected = enc.encode(audio, sr).tokens.numpy()
            assert np.array_equal(np.load(out / rows[key]["audio_tokens_path"]), expected), (label, name)
            assert rows[key]["num_samples"] == audio.shape[-1] and rows[key]["sample_rate"] == sr
        (fail,) = read_jsonl(out / "failures.jsonl")
        assert fail["file_name"] == "audio/train/00000002_c.mp3" and fail["stage"] == "read"
    assert snapshot(outs["saved"])["metadata.jsonl"] == snapshot(outs["parquet"])["metadata.jsonl"]
    # a rerun reads nothing again: the rows' bytes are unchanged
    from heartcodec_lab.tokenize.job import run_shard

    again = run_shard(job_config(None, outs["saved"], input=str(tmp_path / "saved")), enc, 0, 1)
    assert (again.ok, again.skipped, again.failed) == (0, 2, 1)


def test_input_spec_errors(tmp_path):
    from heartcodec_lab.tokenize.sources import classify_input

    assert classify_input("s3://bucket/songs/").kind == "url"
    assert classify_input("hf://datasets/user/repo/audio").kind == "url"
    assert classify_input("hf:user/repo") == classify_input("hf:user/repo")
    assert classify_input("hf:user/repo").value == "user/repo"
    (tmp_path / "m.jsonl").write_text("")
    assert classify_input(str(tmp_path / "m.jsonl")).kind == "manifest"
    with pytest.raises(FileNotFoundError, match="input not found"):
        classify_input(str(tmp_path / "missing"))
    write(tmp_path / "one.wav", tone(0.5, 8000, 1), 8000)
    with pytest.raises(ValueError, match="single file"):
        classify_input(str(tmp_path / "one.wav"))
    with pytest.raises(FileNotFoundError, match="nothing there"):
        run(job_config(None, tmp_path / "o", input="memory:///scale-test/none"), encoder=StandInEncoder())
