"""Reading and writing audio files.

soundfile (libsndfile) reads WAV, FLAC, OGG/Vorbis, Opus and MP3; m4a/AAC and other
containers go through ffmpeg when it is installed. Every failure is an :class:`AudioError`
whose message starts with the file name, so a bulk job can record it and go on.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from heartcodec_lab.atomic import atomic_path
from heartcodec_lab.audio.channels import to_mono, to_stereo
from heartcodec_lab.audio.resample import resample

# The one list of audio files the toolkit picks up from a folder (tokenize, evaluate, transcribe, study, data).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac")
# Containers libsndfile cannot open: decoded whole by ffmpeg. Everything else is read (and streamed) by soundfile.
FFMPEG_EXTENSIONS = (".m4a", ".aac", ".mp4")


def audio_extensions(extensions=None) -> tuple[str, ...]:
    """Extensions as lower-case ``.ext`` strings (``"FLAC"`` and ``".flac"`` alike); None gives ``AUDIO_EXTENSIONS``."""
    if extensions is None:
        return AUDIO_EXTENSIONS
    if isinstance(extensions, str):
        extensions = [extensions]
    return tuple(e if e.startswith(".") else f".{e}" for e in (str(x).lower() for x in extensions))


class AudioError(ValueError):
    """A file that cannot be used as audio; ``str(err)`` names the file and the problem."""

    def __init__(self, path: str | Path, problem: str, stage: str = "read"):
        self.path = str(path)
        self.problem = problem
        self.stage = stage
        super().__init__(f"{self.path}: {problem}")


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(path, f"unreadable audio ({err})") from err
    return data.T, int(sr)


def _read_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(path, "m4a/AAC needs ffmpeg, which is not installed (e.g. `apt-get install ffmpeg`)")
    probe = _ffprobe(path)
    channels, sr = probe["channels"], probe["sample_rate"]
    cmd = [ffmpeg, "-v", "error", "-nostdin", "-i", str(path), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise AudioError(path, f"ffmpeg could not decode it: {proc.stderr.decode(errors='replace').strip()}")
    data = np.frombuffer(proc.stdout, dtype=np.float32)
    return data.reshape(-1, channels).T.copy(), sr


def _ffprobe(path: Path) -> dict:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise AudioError(path, "m4a/AAC needs ffmpeg/ffprobe, which is not installed")
    cmd = [
        ffprobe,
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_entries",
        "stream=sample_rate,channels:format=duration",
        "-of",
        "default=nw=1",
        str(path),
    ]
    proc = subprocess.run(cmd, capture_output=True, check=False, text=True)
    fields = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    if proc.returncode != 0 or "sample_rate" not in fields:
        raise AudioError(path, f"no audio stream found ({proc.stderr.strip() or 'ffprobe failed'})")
    duration = float(fields.get("duration", "nan")) if fields.get("duration", "N/A") != "N/A" else float("nan")
    return {"sample_rate": int(fields["sample_rate"]), "channels": int(fields["channels"]), "duration": duration}


def check_container(path: Path) -> None:
    """Raise :class:`AudioError` for files that are missing, empty, or WAVs cut short of their header's size."""
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    if path.suffix.lower() == ".wav":
        declared = _wav_data_end(path)
        if declared is not None and declared > size:
            raise AudioError(path, f"truncated WAV: header declares {declared} bytes, file has {size}")


def _wav_data_end(path: Path) -> int | None:
    """Byte offset where the WAV 'data' chunk should end, or None if not a plain RIFF/WAVE."""
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                return None
            cid, csize = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"data":
                # 0xFFFFFFFF / 0 mark streamed WAVs of unknown length: nothing to check
                return None if csize in (0, 0xFFFFFFFF) else pos + 8 + csize
            pos += 8 + csize + (csize & 1)
            f.seek(pos)


def _read_any(path: Path) -> tuple[np.ndarray, int]:
    check_container(path)
    if path.suffix.lower() in FFMPEG_EXTENSIONS:
        return _read_ffmpeg(path)
    return _read_soundfile(path)


def check_audio(audio: torch.Tensor, sample_rate: int, path: str | Path, min_seconds: float = 0.0) -> None:
    """Raise :class:`AudioError` for empty, non-finite or too-short audio ``[C, S]``."""
    if audio.numel() == 0 or audio.shape[-1] == 0:
        raise AudioError(path, "contains no samples", stage="check")
    if not torch.isfinite(audio).all():
        bad = int((~torch.isfinite(audio)).sum())
        raise AudioError(path, f"contains {bad} non-finite samples (NaN/Inf)", stage="check")
    seconds = audio.shape[-1] / sample_rate
    if seconds < min_seconds:
        raise AudioError(path, f"too short: {seconds:.3f} s < {min_seconds:.3f} s", stage="check")


def load_audio(
    path: str | Path,
    sample_rate: int | None = None,
    channels: str = "stereo",
    min_seconds: float = 0.0,
) -> tuple[torch.Tensor, int]:
    """Read ``path`` -> (float32 ``[C, S]``, rate).

    sample_rate: resample to this rate (None keeps the file's rate).
    channels: "stereo" (mono duplicated, >2 downmixed with a warning), "mono" or "keep".
    min_seconds: refuse shorter files (e.g. one 80 ms token frame).
    """
    path = Path(path)
    data, sr = _read_any(path)
    audio = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    check_audio(audio, sr, path, min_seconds)
    if channels == "stereo":
        audio = to_stereo(audio, source=str(path))
    elif channels == "mono":
        audio = to_mono(audio)
    elif channels != "keep":
        raise ValueError(f"channels must be 'stereo', 'mono' or 'keep', got {channels!r}")
    if sample_rate is not None and sample_rate != sr:
        audio = resample(audio, sr, sample_rate)
        sr = sample_rate
    return audio, sr


def audio_info(path: str | Path) -> tuple[int, int, int]:
    """(sample_rate, channels, frames) without decoding the whole file."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.suffix.lower() in FFMPEG_EXTENSIONS:
        p = _ffprobe(path)
        return p["sample_rate"], p["channels"], int(round(p["duration"] * p["sample_rate"]))
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(path, f"unreadable audio ({err})") from err
    return int(info.samplerate), int(info.channels), int(info.frames)


def save_audio(path: str | Path, audio: torch.Tensor, sample_rate: int, subtype: str | None = None) -> Path:
    """Write ``[C, S]`` float audio atomically (:func:`~heartcodec_lab.atomic.atomic_path`): no partial file remains."""
    path = Path(path)
    data = audio.detach().float().cpu().numpy()
    if data.ndim == 1:
        data = data[None]
    if subtype is None and path.suffix.lower() == ".opus":
        subtype = "OPUS"
    with atomic_path(path, fsync=False) as tmp:
        sf.write(str(tmp), data.T, int(sample_rate), subtype=subtype, format=_format_for(path))
    return path


def _format_for(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    return {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3", "opus": "OGG"}.get(ext, "WAV")
