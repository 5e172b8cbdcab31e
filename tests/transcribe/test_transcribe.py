"""HeartTranscriptor: parity with transformers' own pipeline, strict loading, the resumable command."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from heartcodec_lab.audio import save_audio
from heartcodec_lab.cli.transcribe import run
from heartcodec_lab.data.synth import synth_music
from heartcodec_lab.transcribe import WHISPER_SAMPLE_RATE, TranscriberLoadError, TranscribeSettings, load_transcriber
from heartcodec_lab.transcribe.embedded import build_embedded_transcriber

# few new tokens: the tiny random model rarely says end-of-text, and every token costs a decoder step
FAST = {"max_new_tokens": 6, "num_beams": 1, "temperature": [0.0]}


@pytest.fixture(scope="module")
def saved_whisper(tmp_path_factory) -> Path:
    """The embedded tiny Whisper saved with save_pretrained, as the released folder is."""
    folder = tmp_path_factory.mktemp("ckpt") / "HeartTranscriptor-oss"
    model, processor = build_embedded_transcriber()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_default_settings_are_heartlibs():
    kwargs = TranscribeSettings().generate_kwargs()
    assert kwargs == {
        "max_new_tokens": 256,
        "num_beams": 2,
        "task": "transcribe",
        "condition_on_prev_tokens": False,
        "compression_ratio_threshold": 1.8,
        "temperature": (0.0, 0.1, 0.2, 0.4),
        "logprob_threshold": -1.0,
        "no_speech_threshold": 0.4,
    }
    assert TranscribeSettings().chunk_length_s == 30.0
    with pytest.raises(ValueError, match="num_beam"):
        TranscribeSettings.from_dict({"num_beam": 3})


def test_same_text_as_transformers_pipeline(saved_whisper):
    from transformers import pipeline

    # 35 s: two 30 s chunks; heartlib's settings (temperature fallback, 2 beams) with a short token budget
    settings = {"max_new_tokens": 12}
    ours = load_transcriber(saved_whisper.parent, settings=settings)  # the parent folder resolves too
    assert ours.source["path"] == str(saved_whisper.resolve())
    audio = synth_music(35.0, sample_rate=WHISPER_SAMPLE_RATE, seed=1)
    text = ours.transcribe(audio, WHISPER_SAMPLE_RATE)

    reference = pipeline("automatic-speech-recognition", model=str(saved_whisper), chunk_length_s=30, device="cpu")
    torch.manual_seed(0)
    expected = reference(
        {"raw": audio.mean(0).numpy(), "sampling_rate": WHISPER_SAMPLE_RATE},
        generate_kwargs=ours.settings.generate_kwargs(),
    )["text"].strip()
    assert text == expected
    assert len(text) > 0


def test_embedded_default_is_deterministic():
    audio = synth_music(2.0, sample_rate=48000, seed=2)
    a = load_transcriber(None, settings=FAST)
    b = load_transcriber(None, settings=FAST)
    assert a.source["kind"] == "embedded-tiny"
    assert a.transcribe(audio, 48000) == b.transcribe(audio, 48000)


def test_loading_is_strict(saved_whisper, tmp_path):
    with pytest.raises(TranscriberLoadError, match="transcriber folder not found"):
        load_transcriber(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in saved_whisper.iterdir():
        if f.name != "generation_config.json":
            (broken / f.name).write_bytes(f.read_bytes())
    with pytest.raises(TranscriberLoadError, match=r"broken: .*missing generation_config\.json"):
        load_transcriber(broken)
    (broken / "generation_config.json").write_bytes((saved_whisper / "generation_config.json").read_bytes())
    weights = load_file(broken / "model.safetensors")
    weights.pop(next(k for k in weights if "fc1.weight" in k))
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(TranscriberLoadError, match=r"broken: weights do not match .*missing_keys"):
        load_transcriber(broken)


@pytest.fixture
def transcribe_cfg(compose):
    def make(**values):
        overrides = [f"{k}={v}" for k, v in values.items()]
        return compose("transcribe", *overrides, *(f"transcriber.settings.{k}={v}" for k, v in FAST.items()))

    return make


class _Keep(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_command_writes_jsonl_resumes_and_records_bad_files(tmp_path, transcribe_cfg):
    songs = tmp_path / "songs"
    (songs / "album").mkdir(parents=True)
    save_audio(songs / "a.wav", synth_music(1.5, seed=1), 48000)
    save_audio(songs / "album" / "b.flac", synth_music(1.0, seed=2), 48000)
    (songs / "broken.wav").write_bytes(b"not audio")
    out = tmp_path / "out" / "lyrics.jsonl"

    kept = _Keep()
    logging.getLogger("transformers").addHandler(kept)
    try:
        counts = run(transcribe_cfg(input=songs, output=out))
    finally:
        logging.getLogger("transformers").removeHandler(kept)
    assert counts == {"done": 2, "skipped": 0, "failed": 1}
    # transformers gets the length bound the way Whisper expects it: no per-chunk warning about
    # max_new_tokens next to max_length (nor its own suppress-token workaround, nor chunking)
    assert not any(w in m for m in kept.messages for w in ("max_new_tokens", "generation_config", "chunk_length_s")), (
        kept.messages
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["file"] for r in records] == ["a.wav", "album/b.flac"]
    assert all(isinstance(r["text"], str) and r["duration_s"] > 0.9 for r in records)
    failures = [json.loads(line) for line in (out.parent / "lyrics.failures.jsonl").read_text().splitlines()]
    assert failures[0]["file"] == "broken.wav" and "broken.wav" in failures[0]["error"]

    before = out.read_text()
    counts = run(transcribe_cfg(input=songs, output=out))  # resume: done files are skipped, the bad one retried
    assert counts == {"done": 0, "skipped": 2, "failed": 1}
    assert out.read_text() == before

    # an interrupted run left a torn line: that file is redone, the others are kept
    out.write_text(before.splitlines()[0] + "\n" + before.splitlines()[1][:10])
    counts = run(transcribe_cfg(input=songs, output=out))
    assert counts == {"done": 1, "skipped": 1, "failed": 1}
    assert [json.loads(line)["file"] for line in out.read_text().splitlines()[::2]] == ["a.wav", "album/b.flac"]

    single = run(transcribe_cfg(input=songs / "a.wav", output=tmp_path / "one.jsonl"))
    assert single["done"] == 1
    assert json.loads((tmp_path / "one.jsonl").read_text())["text"] == records[0]["text"]


def test_command_needs_an_input(tmp_path, transcribe_cfg):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        run(transcribe_cfg(input=tmp_path / "nowhere", output=tmp_path / "t.jsonl"))
