"""run_shard takes a typed job (TokenizeJob): built from the Hydra config or by hand, with the same result."""

from __future__ import annotations

import pytest
from test_tokenize_support import StandInEncoder, job_config, make_music_folder, snapshot

from heartcodec_lab.audio import AUDIO_EXTENSIONS
from heartcodec_lab.tokenize.finalize import finalize
from heartcodec_lab.tokenize.job import run_shard
from heartcodec_lab.tokenize.job_config import TokenizeJob


def test_from_config_types_the_settings(tmp_path):
    job = TokenizeJob.from_config(job_config(tmp_path / "in", tmp_path / "out", batch_chunks=3, block_seconds=2))
    assert job.output_dir == tmp_path / "out" and job.input_dir == tmp_path / "in" and job.input_manifest is None
    assert job.batch_chunks == 3 and job.block_seconds == 2.0 and job.num_workers == 0 and job.progress is False
    assert job.extensions is None  # the audio layer's one list, recorded resolved in dataset_info.json
    assert job.dataset_settings() == {
        "extensions": list(AUDIO_EXTENSIONS),
        "default_tags": "music",
        "instrumental_lyrics": "[Instrumental]",
        "pad_eight_frames": True,
        "link_audio": True,
    }
    with pytest.raises(ValueError, match="output=FOLDER is required"):
        TokenizeJob.from_config({"input": "x"})


def test_a_job_by_hand_equals_one_from_the_config(tmp_path):
    make_music_folder(tmp_path / "in")
    encoder = StandInEncoder()
    from_cfg = run_shard(job_config(tmp_path / "in", tmp_path / "a"), encoder, 0, 1)
    by_hand = run_shard(
        TokenizeJob(output_dir=tmp_path / "b", input_dir=tmp_path / "in", num_workers=0, progress=False), encoder, 0, 1
    )
    assert (from_cfg.ok, from_cfg.failed) == (by_hand.ok, by_hand.failed) and by_hand.ok > 0
    finalize(tmp_path / "a")
    finalize(tmp_path / "b")
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
