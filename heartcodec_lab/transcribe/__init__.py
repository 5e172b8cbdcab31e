"""Lyrics transcription with HeartTranscriptor (a Whisper model; console command ``heartcodec-transcribe``).

    from heartcodec_lab.transcribe import load_transcriber
    transcriber = load_transcriber("ckpt/HeartTranscriptor-oss")   # None -> embedded tiny random model
    text = transcriber.transcribe_file("song.flac")                # or .transcribe(audio [C, S], rate)

A plain library (no Hydra, no Lightning); the command lives in ``cli.py``.
"""

from heartcodec_lab.audio.rates import WHISPER_SAMPLE_RATE
from heartcodec_lab.transcribe.loading import TranscriberLoadError, load_transcriber
from heartcodec_lab.transcribe.model import HeartTranscriptor
from heartcodec_lab.transcribe.settings import TranscribeSettings

__all__ = ["WHISPER_SAMPLE_RATE", "HeartTranscriptor", "TranscribeSettings", "TranscriberLoadError", "load_transcriber"]
