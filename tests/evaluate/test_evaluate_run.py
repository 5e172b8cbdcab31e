"""The evaluation run end to end with small stand-in models: dataset usage, audio metrics, resume, compare."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

import heartcodec_lab.encoders as encoders_pkg
from heartcodec_lab.encoders.base import EncodedAudio
from heartcodec_lab.evaluate import run_evaluation
from heartcodec_lab.evaluate.context import EvalContext
from heartcodec_lab.evaluate.dataset import DatasetError, read_tokens

SR = 48000
K = 16
HOP = 3840


# -- stand-ins: a codec that remembers what each token sequence decodes to ------------------


class StandInCodec:
    """detokenize returns the audio registered for exactly these tokens (zeros otherwise)."""

    sample_rate = SR

    class config:
        codebook_size = K

    def __init__(self):
        self.bank: dict[bytes, torch.Tensor] = {}

    def detokenize(self, codes, duration=29.76, num_steps=10, guidance_scale=1.25, disable_progress=True):
        out = torch.zeros(2, codes.shape[1] * HOP)
        audio = self.bank.get(codes.numpy().tobytes())
        if audio is not None:
            out[:, : audio.shape[-1]] = audio
        return out

    def describe(self):
        return {"codec": "stand-in"}


class StandInEncoder(torch.nn.Module):
    """Scale-invariant tokens (zero crossings per 80 ms frame); ``flip`` changes quantizer 3 on even frames.

    The first time it sees a clip it registers ``gain * audio`` as the decoding of its tokens.
    """

    def __init__(self, codec, flip: bool, gain: float):
        super().__init__()
        self.codec, self.flip, self.gain, self.calls = codec, flip, gain, 0

    def encode(self, audio, sample_rate):
        self.calls += 1
        x = audio.mean(0)
        n = math.ceil(x.shape[-1] / HOP)
        frames = torch.nn.functional.pad(x, (0, n * HOP - x.shape[-1])).reshape(n, HOP)
        crossings = (torch.sign(frames[:, 1:]) != torch.sign(frames[:, :-1])).sum(-1)
        tokens = torch.stack([(crossings + q) % K for q in range(8)]).long()
        if self.flip:
            tokens[3, ::2] = (tokens[3, ::2] + 1) % K
        self.codec.bank.setdefault(tokens.numpy().tobytes(), self.gain * audio)
        return EncodedAudio(tokens=tokens, features=torch.zeros(n, 512))

    def describe(self):
        return {"encoder": "stand-in", "flip": self.flip}


@pytest.fixture
def stand_ins(monkeypatch):
    codec = StandInCodec()
    built = {}

    def build(kind, path, codec_arg, **kwargs):
        enc = StandInEncoder(codec_arg, flip=(kind == "flip"), gain=0.5 if kind == "flip" else 1.0)
        built[kind] = enc
        return enc

    monkeypatch.setattr(EvalContext, "codec", property(lambda self: codec))
    monkeypatch.setattr(encoders_pkg, "build_encoder", build)
    return built


def write_clips(folder, n=2, seconds=2.0):
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    for i in range(n):
        sig = 0.3 * np.sin(2 * np.pi * (220 * (i + 1)) * t) + 0.05 * np.sin(2 * np.pi * 6000 * t)
        sig = sig + 0.02 * rng.standard_normal(t.shape)
        sf.write(folder / f"clip_{i}.wav", np.stack([sig, sig], 1).astype(np.float32), SR)
    return folder


def audio_cfg(tmp_path, out="run", **over):
    cfg = {
        "output": str(tmp_path / out),
        "resume": True,
        "mode": "encoders",
        "input": str(tmp_path / "clips"),
        "codec": {"path": None},
        "codebook_size": K,
        "audio": {"extensions": ["wav"], "max_clips": None, "max_seconds": None, "min_seconds": 0.1},
        "encoders": [{"name": "flip", "kind": "flip", "path": None}, {"name": "ref", "kind": "ref", "path": None}],
        "reference": "ref",
        "reconstruction": True,
        "roundtrip": True,
        "save_reconstructions": False,
        "detokenize": {"num_steps": 2, "guidance_scale": 1.25, "duration": 29.76, "seed": 0},
        "mula": {"enabled": False},
        "plots": {"spectrogram_clips": 1},
    }
    cfg.update(over)
    return cfg


# -- dataset mode --------------------------------------------------------------------------


def make_dataset(root, arrays: dict[str, np.ndarray], with_metadata=True):
    rows = []
    for name, arr in arrays.items():
        path = root / "tokens" / f"{name}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, arr)
        rows.append({"file_name": name, "audio_tokens_path": f"tokens/{name}.npy", "tags": "x", "lyrics": ""})
    if with_metadata:
        (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "dataset_info.json").write_text(json.dumps({"format_version": 1}))


def usage_config(tmp_path, output="out", **over) -> dict:
    """``mode=usage`` on the dataset ``tmp_path/ds`` (codebook size K, embedded codec, resume) into ``tmp_path/output``."""
    cfg = {
        "output": str(tmp_path / output),
        "mode": "usage",
        "input": str(tmp_path / "ds"),
        "codebook_size": K,
        "codec": {"path": None},
        "resume": True,
    }
    return {**cfg, **over}


def test_dataset_mode_counts_exactly(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, K, (8, 30)).astype(np.int16)
    b = rng.integers(0, K, (8, 11)).astype(np.int16)
    make_dataset(tmp_path / "ds", {"a/song.mp3": a, "b.wav": b.T.copy()})  # one file stored [T, 8]
    out = tmp_path / "out"
    summary = run_evaluation(usage_config(tmp_path, mula={"enabled": False}))
    counts = np.load(out / "counts.npy")
    expected = np.stack([np.bincount(np.concatenate([a[q], b[q]]), minlength=K) for q in range(8)])
    np.testing.assert_array_equal(counts, expected)
    usage = summary["dataset"]["usage"]["per_quantizer"]
    assert [u["used_codes"] for u in usage] == [int((expected[q] > 0).sum()) for q in range(8)]
    assert summary["dataset"]["files"] == 2 and summary["dataset"]["frames"] == 41
    report = (out / "report.md").read_text()
    assert "## Codebook usage" in report and "rank_frequency.png" in report
    assert (out / "plots" / "rank_frequency.png").stat().st_size > 1000
    assert len((out / "dataset_items.jsonl").read_text().splitlines()) == 2


def test_dataset_mode_excludes_padding_without_metadata(tmp_path):
    tokens = np.full((8, 10), 7, dtype=np.int16)
    tokens[:, 6:] = 99  # padding
    make_dataset(tmp_path / "ds", {"x": tokens}, with_metadata=False)
    run_evaluation(usage_config(tmp_path, pad_id=99))
    counts = np.load(tmp_path / "out" / "counts.npy")
    assert counts.sum() == 8 * 6 and (counts[:, 7] == 6).all()


def test_dataset_mode_drops_frames_padded_by_the_tokenizer(tmp_path):
    # an exactly-8-frame clip is stored with its last frame repeated (pad_frames = 1)
    tokens = np.concatenate([np.arange(8)[None].repeat(8, 0), np.full((8, 1), 7)], 1).astype(np.int16)
    make_dataset(tmp_path / "ds", {"eight": tokens})
    rows = [json.loads(x) for x in (tmp_path / "ds" / "metadata.jsonl").read_text().splitlines()]
    rows[0]["pad_frames"] = 1
    (tmp_path / "ds" / "metadata.jsonl").write_text(json.dumps(rows[0]) + "\n")
    summary = run_evaluation(usage_config(tmp_path))
    counts = np.load(tmp_path / "out" / "counts.npy")
    np.testing.assert_array_equal(counts[:, :8], 1)  # codes 0..7 once each, the repeated 7 not counted
    assert summary["dataset"]["frames"] == 8
    assert summary["dataset"]["usage"]["per_quantizer"][0]["entropy_bits"] == pytest.approx(3.0)


def test_dataset_errors_name_the_file(tmp_path):
    make_dataset(tmp_path / "ds", {"bad": np.full((8, 5), K, dtype=np.int16)})
    with pytest.raises(ValueError, match=r"bad\.npy.*outside 0\.\.15"):
        run_evaluation(usage_config(tmp_path, "o"))
    np.save(tmp_path / "shape.npy", np.zeros((3, 5), dtype=np.int16))
    with pytest.raises(DatasetError, match=r"shape\.npy: expected tokens shaped \[8, T\] or \[T, 8\]"):
        read_tokens(tmp_path / "shape.npy")
    (tmp_path / "ds" / "metadata.jsonl").write_text('{"audio_tokens_path": "tokens/bad.npy"}\n{oops\n')
    with pytest.raises(DatasetError, match=r"metadata\.jsonl:2: not valid JSON"):
        run_evaluation(usage_config(tmp_path, "o"))


def test_nothing_to_do_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="mode=None: choose one of usage, encoders, pairs, adherence, compare"):
        run_evaluation({"output": str(tmp_path / "o"), "codec": {"path": None}})
    with pytest.raises(ValueError, match=r"mode=usage needs input=\.\.\. \(a tokenized dataset folder\)"):
        run_evaluation({"mode": "usage", "output": str(tmp_path / "o"), "codec": {"path": None}})


# -- audio mode ----------------------------------------------------------------------------


def test_audio_mode_known_answers(tmp_path, stand_ins):
    write_clips(tmp_path / "clips")
    summary = run_evaluation(audio_cfg(tmp_path))
    ref, flip = summary["encoders"]["ref"], summary["encoders"]["flip"]
    # the reference decodes to the original: zero distances, perfect round trip
    r = ref["reconstruction"]
    assert r["mstft_distance"]["max"] == pytest.approx(0.0, abs=1e-6)
    assert r["loudness_diff_lu"]["max"] == pytest.approx(0.0, abs=1e-6)
    assert r["si_sdr_db"]["min"] > 80
    assert ref["roundtrip"]["match_rate"] == [1.0] * 8
    assert "agreement" not in ref
    # the other decodes to half the amplitude and differs in quantizer 3 on even frames (25 frames per clip)
    f = flip["reconstruction"]
    assert f["loudness_diff_lu"]["mean"] == pytest.approx(20 * math.log10(0.5), abs=1e-3)
    assert f["shimmer_ratio_5_7khz"]["mean"] == pytest.approx(0.25, rel=1e-6)
    assert f["si_sdr_db"]["min"] > 80
    rate = 12 / 25  # 2 s = 25 frames of 3840 samples; 13 even frames flipped
    assert flip["agreement"]["match_rate"] == pytest.approx([1, 1, 1, rate, 1, 1, 1, 1])
    assert flip["agreement"]["match_rate_first_k"] == pytest.approx([1, 1, 1] + [rate] * 5)
    assert flip["roundtrip"]["match_rate"] == [1.0] * 8
    out = tmp_path / "run"
    assert (out / "counts_ref.npy").is_file() and np.load(out / "counts_ref.npy").sum() == 8 * 2 * 25
    tokens = read_tokens(out / "tokens" / "flip" / "clip_0.wav.npy")
    assert tokens.shape == (8, 25)
    report = (out / "report.md").read_text()
    for heading in (
        "## Reconstruction",
        "## Agreement with the reference encoder",
        "## Round-trip stability",
        "## Spectrograms",
    ):
        assert heading in report
    assert len(list((out / "plots" / "spectrograms").glob("*.png"))) == 2  # first clip, two encoders
    assert json.loads((out / "summary.json").read_text())["encoders"]["flip"]["clips"] == 2


def test_audio_mode_resumes_after_interruption(tmp_path, stand_ins):
    write_clips(tmp_path / "clips", n=2)
    cfg = audio_cfg(tmp_path, reconstruction=False, plots={"spectrogram_clips": 0})
    run_evaluation(cfg)
    items = tmp_path / "run" / "items.jsonl"
    lines = items.read_text().splitlines()
    assert len(lines) == 4
    first_summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # keep the first two records and a torn third, as after a crash mid-write
    items.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:20])
    run_evaluation(cfg)
    records = [json.loads(x) for x in items.read_text().splitlines()]
    assert sorted((r["clip"], r["encoder"]) for r in records) == sorted(
        (f"clip_{i}.wav", e) for i in range(2) for e in ("ref", "flip")
    )
    # only clip_1 was redone: ref (encode + round trip) and flip (encode + round trip)
    assert stand_ins["ref"].calls == 2 and stand_ins["flip"].calls == 2
    second = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert second["encoders"]["flip"]["agreement"] == first_summary["encoders"]["flip"]["agreement"]


def test_unreadable_clip_is_recorded_and_skipped(tmp_path, stand_ins):
    write_clips(tmp_path / "clips", n=1)
    (tmp_path / "clips" / "broken.wav").write_bytes(b"RIFF not really audio")
    summary = run_evaluation(audio_cfg(tmp_path, reconstruction=False, roundtrip=False, plots={"spectrogram_clips": 0}))
    failures = [json.loads(x) for x in (tmp_path / "run" / "failures.jsonl").read_text().splitlines()]
    assert len(failures) == 1 and "broken.wav" in failures[0]["error"]
    assert summary["encoders"]["ref"]["clips"] == 1
    assert "reconstruction" not in summary["encoders"]["ref"]


def test_unknown_reference_is_an_error(tmp_path, stand_ins):
    write_clips(tmp_path / "clips", n=1)
    with pytest.raises(ValueError, match="reference 'nope' is not one of"):
        run_evaluation(audio_cfg(tmp_path, reference="nope"))


def test_compare_mode_puts_runs_side_by_side(tmp_path, stand_ins):
    write_clips(tmp_path / "clips", n=1)
    run_evaluation(audio_cfg(tmp_path, out="a", label="recipe_a", plots={"spectrogram_clips": 0}))
    run_evaluation(
        audio_cfg(
            tmp_path,
            out="b",
            label="recipe_b",
            encoders=[{"name": "ref", "kind": "ref"}],
            plots={"spectrogram_clips": 0},
        )
    )
    run_evaluation(
        {"output": str(tmp_path / "cmp"), "mode": "compare", "input": [str(tmp_path / "a"), str(tmp_path / "b")]}
    )
    report = (tmp_path / "cmp" / "report.md").read_text()
    for row in ("| recipe_a/flip |", "| recipe_a/ref |", "| recipe_b/ref |"):
        assert row in report
    assert (tmp_path / "cmp" / "plots" / "rank_frequency.png").is_file()
    assert (tmp_path / "cmp" / "plots" / "metric_distributions.png").is_file()
    with pytest.raises(FileNotFoundError, match="no summary.json"):
        run_evaluation({"output": str(tmp_path / "cmp2"), "mode": "compare", "input": [str(tmp_path / "clips")]})


def test_nll_per_frame_uses_each_items_tags(tmp_path, monkeypatch):
    import heartcodec_lab.mula.scoring as scoring

    # stand-in scorer: every frame costs as many nats as the tags have characters
    monkeypatch.setattr(EvalContext, "mula", property(lambda self: object()))
    monkeypatch.setattr(
        scoring, "frame_nll", lambda bundle, tokens, tags, lyrics: torch.full((tokens.shape[1],), float(len(tags)))
    )
    make_dataset(tmp_path / "ds", {"a": np.zeros((8, 4), np.int16), "b": np.ones((8, 6), np.int16)})
    lines = (tmp_path / "ds" / "metadata.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    rows[1]["tags"] = "piano, calm"
    (tmp_path / "ds" / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = run_evaluation(usage_config(tmp_path, "o", mula={"enabled": True}))
    records = [json.loads(x) for x in (tmp_path / "o" / "dataset_items.jsonl").read_text().splitlines()]
    assert [r["nll_per_frame_nats"] for r in records] == [1.0, 11.0]
    assert summary["dataset"]["nll_per_frame_nats"]["mean"] == pytest.approx(6.0)
    assert "## HeartMuLa likelihood" in (tmp_path / "o" / "report.md").read_text()
