"""heartcodec_lab.tokenize.benchmark: the measured runs of benchmarks/bench_tokenize.py, with the stand-in encoder."""

from __future__ import annotations

import soundfile as sf
from test_tokenize_support import StandInEncoder

from heartcodec_lab.tokenize.benchmark import bulk_run, encoder_alone_run, write_mixed_folder, write_tone_file


def test_tone_file_has_the_length_and_the_same_samples_whatever_the_block_size(tmp_path):
    write_tone_file(tmp_path / "a.wav", 2.5, 16000, seed=3, block_seconds=0.3)
    write_tone_file(tmp_path / "b.wav", 2.5, 16000, seed=3)
    a, rate = sf.read(tmp_path / "a.wav", dtype="int16")
    b, _ = sf.read(tmp_path / "b.wav", dtype="int16")
    assert rate == 16000 and a.shape == (40000, 2)
    assert (a == b).all()
    write_tone_file(tmp_path / "c.wav", 2.5, 16000, seed=4)
    assert not (sf.read(tmp_path / "c.wav", dtype="int16")[0] == a).all()


def test_mixed_folder_alternates_formats_and_puts_the_longest_file_in_shard_one(tmp_path):
    paths = write_mixed_folder(tmp_path, [3.0, 1.0, 2.0])
    assert [p.name for p in paths] == ["00_1s.flac", "01_2s.wav", "02_3s.flac"]
    assert [sf.info(str(p)).samplerate for p in paths] == [48000, 44100, 48000]
    assert [round(sf.info(str(p)).duration, 3) for p in paths] == [1.0, 2.0, 3.0]
    four = [p.name for p in write_mixed_folder(tmp_path / "four", [4.0, 1.0, 3.0, 2.0])]
    assert four[1::2] == ["01_2s.wav", "03_4s.wav"]  # shard 1 of 2 (every other file by name) has the longest


def test_bulk_run_rows_count_every_file_and_the_two_shards_make_the_folder(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_mixed_folder(folder, [1.0, 2.0, 3.0])
    (folder / "03_broken.wav").write_bytes(b"not audio")
    enc = StandInEncoder()
    whole = bulk_run(folder, enc, "whole", workers=0)
    assert (whole["run"], whole["files"], whole["failed"]) == ("whole", 3, 1)
    assert "03_broken" in str(whole["failures"][0]), whole["failures"]
    assert abs(whole["audio_s"] - 6.0) < 1e-6
    assert whole["cpu_s"] >= whole["cpu_main_s"] > 0 and whole["wall_s"] > 0
    shards = [bulk_run(folder, enc, f"shard {k}", k, 2, workers=0) for k in range(2)]
    assert sum(r["files"] + r["failed"] for r in shards) == 4
    assert abs(sum(r["audio_s"] for r in shards) - 6.0) < 1e-6
    assert all(r["peak_rss_main_gib"] > 0 for r in shards)


def test_encoder_alone_run_counts_whole_chunks():
    enc = StandInEncoder()
    row = encoder_alone_run(enc, chunks=3, warmup_samples=enc.chunk_samples)
    assert row["audio_s"] == 3 * enc.chunk_seconds == 6.0
    assert row["run"] == "encoder alone, 3 x 2 s chunks"
    assert row["cpu_workers_s"] == 0.0 and row["cpu_s"] >= 0
