"""Fingerprints follow the weights (stand-ins included); resume and merge refuse tokens of another encoder or RVQ."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from test_tokenize_support import StandInEncoder, job_config, read_jsonl, tone, write
from vector_quantize_pytorch import ResidualVQ

from heartcodec_lab.codec import RANDOM_CODEC, load_codec
from heartcodec_lab.encoders.fingerprint import encoder_fingerprint, rvq_fingerprint
from heartcodec_lab.encoders.projection import load_projection_encoder, save_projection
from heartcodec_lab.provenance import ProvenanceError
from heartcodec_lab.tokenize.merge import merge
from heartcodec_lab.tokenize.runner import run


def other_rvq(seed: int = 99) -> ResidualVQ:
    torch.manual_seed(seed)
    return ResidualVQ(dim=512, codebook_size=256, num_quantizers=8, codebook_dim=8).eval()


def retrained(seed: int = 5) -> StandInEncoder:
    """The seed-0 stand-in with the same RVQ but other encoder weights (as after more training)."""
    encoder = StandInEncoder(seed=0)
    with torch.no_grad():
        encoder.proj.copy_(torch.randn(encoder.proj.shape, generator=torch.Generator().manual_seed(seed)) / 20)
    return encoder


def test_stand_in_fingerprint_follows_its_weights():
    a, same, b = StandInEncoder(seed=0), StandInEncoder(seed=0), StandInEncoder(seed=1)
    assert a.describe() == b.describe()  # the description alone cannot tell them apart
    assert encoder_fingerprint(a) == encoder_fingerprint(same)
    assert encoder_fingerprint(a) != encoder_fingerprint(b)
    assert encoder_fingerprint(a).startswith("stand-in@")
    with torch.no_grad():
        same.proj[0, 0] += 1e-3  # one weight nudged
    assert encoder_fingerprint(same) != encoder_fingerprint(a)


def test_another_rvq_changes_the_encoder_fingerprint():
    a, b = StandInEncoder(seed=0), StandInEncoder(seed=0)
    b.quantizer = other_rvq()
    assert rvq_fingerprint(a.quantizer) != rvq_fingerprint(b.quantizer)
    assert encoder_fingerprint(a) != encoder_fingerprint(b)


def test_projection_fingerprint_follows_weights_not_folder(tmp_path):
    codec = load_codec(RANDOM_CODEC)
    untrained = [load_projection_encoder(None, codec, seed=s) for s in (0, 0, 1)]
    assert encoder_fingerprint(untrained[0]) == encoder_fingerprint(untrained[1]) != encoder_fingerprint(untrained[2])
    for folder in ("here", "moved"):
        save_projection(tmp_path / folder, untrained[2].projection, codec.describe())
    here, moved = (load_projection_encoder(tmp_path / f, codec) for f in ("here", "moved"))
    assert encoder_fingerprint(here) == encoder_fingerprint(moved)


# -- tokenize: resume and merge ----------------------------------------------------------------
@pytest.fixture
def songs(tmp_path):
    src = tmp_path / "in"
    for i in range(3):
        write(src / f"s{i}.wav", tone(0.6 + 0.3 * i, 48000, 2, seed=i), 48000)
    return src


def test_changed_encoder_on_resume_is_refused_then_reencoded(tmp_path, songs):
    out = tmp_path / "out"
    assert run(job_config(songs, out), encoder=StandInEncoder(seed=0)) == 0
    before = {p.name: p.read_bytes() for p in (out / "tokens").iterdir()}
    with pytest.raises(ProvenanceError) as err:
        run(job_config(songs, out), encoder=retrained())
    message = str(err.value)
    assert "holds tokens of another encoder" in message and "the encoder (weights or configuration) differs" in message
    assert "3 file(s) (audio/s0.wav, audio/s1.wav, audio/s2.wav)" in message
    assert f"{out}/.parts/shard-00000-of-00001/ledger.jsonl" in message and "reencode=true" in message
    assert {p.name: p.read_bytes() for p in (out / "tokens").iterdir()} == before  # nothing touched

    # reencode=true: every file is encoded again, and the result equals a fresh run with the new encoder
    assert run(job_config(songs, out, reencode=True), encoder=retrained()) == 0
    fresh = tmp_path / "fresh"
    assert run(job_config(songs, fresh), encoder=retrained()) == 0
    rows = read_jsonl(out / "metadata.jsonl")
    assert [r["encoder"] for r in rows] == [r["encoder"] for r in read_jsonl(fresh / "metadata.jsonl")]
    assert rows[0]["encoder"] == encoder_fingerprint(retrained()) != encoder_fingerprint(StandInEncoder(seed=0))
    for r in rows:
        assert np.array_equal(np.load(out / r["audio_tokens_path"]), np.load(fresh / r["audio_tokens_path"]))
    assert any((out / "tokens" / name).read_bytes() != data for name, data in before.items())


def test_changed_rvq_on_resume_is_named(tmp_path, songs):
    out = tmp_path / "out"
    assert run(job_config(songs, out), encoder=StandInEncoder(seed=0)) == 0
    changed = StandInEncoder(seed=0)
    changed.quantizer = other_rvq()
    with pytest.raises(ProvenanceError, match=r"the codec RVQ differs \(rvq@\w+, rvq@\w+\)"):
        run(job_config(songs, out), encoder=changed)


def test_merge_refuses_shards_of_different_encoders_naming_the_files(tmp_path, songs, monkeypatch, capsys):
    out = tmp_path / "out"
    assert run(job_config(songs, out, num_shards=2, shard=0), encoder=StandInEncoder(seed=0)) == 0
    # the second shard with another encoder: refused at its start, forced through with reencode=true
    with pytest.raises(ProvenanceError, match="holds tokens of another encoder"):
        run(job_config(songs, out, num_shards=2, shard=1), encoder=StandInEncoder(seed=1))
    assert run(job_config(songs, out, num_shards=2, shard=1, reencode=True), encoder=StandInEncoder(seed=1)) == 0
    with pytest.raises(ProvenanceError) as err:
        merge(str(out))
    message = str(err.value)
    assert "the codec RVQ differs" in message  # the seed-1 stand-in has other codebooks too
    first, second = (encoder_fingerprint(StandInEncoder(seed=s)) for s in (0, 1))
    assert (
        f"{first}: 2 file(s) (audio/s0.wav, audio/s2.wav) in {out}/.parts/shard-00000-of-00002/ledger.jsonl" in message
    )
    assert f"{second}: 1 file(s) (audio/s1.wav) in {out}/.parts/shard-00001-of-00002/ledger.jsonl" in message
    assert not (out / "metadata.jsonl").exists()

    # the console command says it in one line
    from hydra.core.global_hydra import GlobalHydra

    from heartcodec_lab.cli import tokenize_merge as merge_module

    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["heartcodec-tokenize-merge", f"output={out}"])
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit) as exit_info:
        merge_module.main()
    GlobalHydra.instance().clear()
    err_text = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err_text.splitlines()) == 1 and "Traceback" not in err_text
    assert "shard-00001-of-00002/ledger.jsonl" in err_text

    # the same shard redone with the first encoder makes a consistent dataset
    assert run(job_config(songs, out, num_shards=2, shard=1, reencode=True), encoder=StandInEncoder(seed=0)) == 0
    assert merge(str(out)) == 0
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["encoder_fingerprint"] == first and info["counts"]["files"] == 3
