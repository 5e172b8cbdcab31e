"""Streaming: block-wise resampling equals whole-file resampling; streamed tokens equal encode()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_tokenize_support import StandInEncoder, tone, write

from heartcodec_lab.audio import BlockResampler, ChunkStream, load_audio, resample, stream_chunks
from heartcodec_lab.tokenize.inputs import InputFile
from heartcodec_lab.tokenize.pipeline import tokenize_stream


@pytest.mark.parametrize(
    "sr_in,sr_out",
    [(44100, 24000), (48000, 24000), (22050, 48000), (44100, 48000), (32000, 24000), (11025, 24000), (24000, 24000)],
)
def test_block_resampler_equals_whole_file_resampling(sr_in, sr_out):
    x = torch.randn(2, sr_in * 3 + 123, generator=torch.Generator().manual_seed(sr_in))
    whole = resample(x, sr_in, sr_out)
    r = BlockResampler(sr_in, sr_out)
    sizes, outs, i, j = [1000, 37, sr_in, 5000, 1], [], 0, 0
    while i < x.shape[1]:
        n = sizes[j % len(sizes)]
        outs.append(r.push(x[:, i : i + n]))
        i, j = i + n, j + 1
    outs.append(r.flush())
    streamed = torch.cat([o for o in outs if o.numel()], dim=-1)
    assert streamed.shape == whole.shape
    torch.testing.assert_close(streamed, whole, atol=1e-6, rtol=0)


def test_resampler_buffer_stays_bounded():
    r = BlockResampler(44100, 24000)
    block = torch.zeros(2, 4410)
    peak = 0
    for _ in range(40):  # 40 blocks of 0.1 s: the buffer must not grow with the stream
        r.push(block)
        peak = max(peak, r.buffer.shape[-1])
    assert peak <= block.shape[-1] + 2 * r.context + r.L


@pytest.mark.parametrize("sr,channels,seconds", [(44100, 1, 5.3), (48000, 2, 4.0), (16000, 2, 0.7)])
def test_stream_chunks_equal_prepare_of_whole_file(tmp_path, sr, channels, seconds):
    enc = StandInEncoder()
    path = write(tmp_path / "a.flac", tone(seconds, sr, channels), sr)
    info = ChunkStream()
    chunks = list(stream_chunks(path, enc.native_sample_rate, enc.chunk_samples, info, block_seconds=0.7))
    audio, _ = load_audio(path, channels="keep")
    native = enc.prepare(audio, sr)
    assert info.native_samples == native.shape[-1]
    assert info.num_samples == audio.shape[-1] and info.sample_rate == sr and info.channels == channels
    flat = torch.cat(chunks, dim=-1)
    assert flat.shape[-1] % enc.chunk_samples == 0 and len(chunks) == -(-native.shape[-1] // enc.chunk_samples)
    torch.testing.assert_close(flat[:, : native.shape[-1]], native, atol=1e-6, rtol=0)
    assert flat[:, native.shape[-1] :].abs().max().item() == 0 if flat.shape[-1] > native.shape[-1] else True


def test_streamed_tokens_equal_encode_of_whole_audio(tmp_path):
    enc = StandInEncoder(batch_chunks=3)
    specs = {
        "mono44.wav": (7.1, 44100, 1),
        "st48.flac": (2.0, 48000, 2),
        "st22.ogg": (3.3, 22050, 2),
        "tiny.wav": (0.2, 32000, 2),
    }
    items = []
    for i, (name, (sec, sr, ch)) in enumerate(specs.items()):
        p = write(tmp_path / name, tone(sec, sr, ch, seed=i), sr)
        items.append(InputFile(p, name))
    # block size smaller than a chunk and batches mixing chunks of several files
    results = {r.item.rel: r for r in tokenize_stream(enc, items, batch_chunks=3, block_seconds=0.9)}
    assert set(results) == set(specs)
    for it in items:
        audio, sr = load_audio(it.path, channels="keep")
        expected = enc.encode(audio, sr).tokens
        got = results[it.rel].tokens
        assert got.shape == expected.shape == (8, enc.num_frames(enc.prepare(audio, sr).shape[-1], 24000))
        assert torch.equal(got, expected), it.rel


class ShortcutEncoder(StandInEncoder):
    """The stand-in (frames depend on their own samples only) with the final-chunk shortcut; records
    the number of samples of every call."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []

    def encode_chunks(self, chunks):
        self.calls.append(("chunks", chunks.shape[0], chunks.shape[-1]))
        return super().encode_chunks(chunks)

    def encode_last_chunk(self, chunk, frames):
        kept = chunk[..., : frames * 1920]
        self.calls.append(("last", chunk.shape[0], kept.shape[-1]))
        b = kept.shape[0]
        x = kept.reshape(b, 2, frames, 1920).permute(0, 2, 1, 3).reshape(b, frames, -1)
        return x @ self.proj


def test_final_chunk_takes_the_encoders_shortcut_with_the_same_tokens(tmp_path):
    enc = ShortcutEncoder(batch_chunks=2)
    # 5.3 s at 24 kHz: two full 2 s chunks and a final one holding 1.3 s (17 frames by the frame rule)
    path = write(tmp_path / "a.wav", tone(5.3, 24000, 2, seed=3), 24000)
    (result,) = tokenize_stream(enc, [InputFile(path, "a.wav")], batch_chunks=2)
    frames = enc.num_frames(int(5.3 * 24000), 24000)
    last = frames - 2 * enc.frames_per_chunk
    assert 0 < last < enc.frames_per_chunk
    assert enc.calls == [("chunks", 2, 48000), ("last", 1, last * 1920)]  # not a padded 2 s chunk
    audio, sr = load_audio(path, channels="keep")
    full = StandInEncoder().encode(audio, sr).tokens  # the base class: every chunk padded and whole
    assert result.tokens.shape == (8, frames) and torch.equal(result.tokens, full)


def test_worker_processes_give_the_same_tokens(tmp_path):
    enc = StandInEncoder()
    items = [
        InputFile(write(tmp_path / f"{i}.wav", tone(1.0 + i, 44100, 2, seed=i), 44100), f"{i}.wav") for i in range(3)
    ]
    inline = {r.item.rel: r.tokens for r in tokenize_stream(enc, items, num_workers=0)}
    workers = {r.item.rel: r.tokens for r in tokenize_stream(enc, items, num_workers=2, batch_chunks=2)}
    assert inline.keys() == workers.keys()
    for k in inline:
        assert torch.equal(inline[k], workers[k])
    assert not np.array_equal(inline["0.wav"].numpy()[:, :5], inline["1.wav"].numpy()[:, :5])


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_file_length():
    """Stream a 1-minute and a 15-minute file in fresh processes: same peak RSS within 64 MiB."""
    import json
    import subprocess
    import sys

    peaks = {}
    for minutes in (1, 15):
        proc = subprocess.run(
            [sys.executable, "-m", "heartcodec_lab.audio.memory_probe", str(minutes)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["chunks"] == -(-minutes * 60 * 24000 // 714240)
        peaks[minutes] = result["peak_rss_gib"]
    assert abs(peaks[15] - peaks[1]) * 1024 < 64, peaks
