"""Decoding settings of HeartTranscriptor, defaulting to those heartlib uses for lyrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class TranscribeSettings:
    """transformers' speech-recognition pipeline settings (30 s chunks) and Whisper generate arguments.

    The defaults are heartlib's: two beams, temperature fallback (0, 0.1, 0.2, 0.4) when a chunk's
    text compresses too well (ratio > 1.8, i.e. repeats) or its mean log-probability is below -1,
    a chunk counted as silence when P(no speech) > 0.4 and the log-probability is low, at most 256
    new tokens per chunk, and no conditioning on the previous chunk's text.
    """

    chunk_length_s: float = 30.0
    batch_size: int = 1
    num_beams: int = 2
    temperature: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4)
    compression_ratio_threshold: float = 1.8
    logprob_threshold: float = -1.0
    no_speech_threshold: float = 0.4
    max_new_tokens: int = 256
    condition_on_prev_tokens: bool = False
    task: str = "transcribe"
    language: str | None = None  # None: Whisper detects it per chunk
    seed: int | None = 0  # the temperature fallback samples; seeded per call for repeatable transcripts

    @classmethod
    def from_dict(cls, values: dict | None) -> TranscribeSettings:
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown transcription settings {unknown}; known: {sorted(known)}")
        if values.get("temperature") is not None:
            t = values["temperature"]
            values["temperature"] = tuple(float(x) for x in t) if isinstance(t, (list, tuple)) else (float(t),)
        return cls(**values)

    def generate_kwargs(self) -> dict:
        """Arguments for ``WhisperForConditionalGeneration.generate`` (through the pipeline)."""
        kwargs = {
            "max_new_tokens": self.max_new_tokens,
            "num_beams": self.num_beams,
            "task": self.task,
            "condition_on_prev_tokens": self.condition_on_prev_tokens,
            "compression_ratio_threshold": self.compression_ratio_threshold,
            "temperature": self.temperature,
            "logprob_threshold": self.logprob_threshold,
            "no_speech_threshold": self.no_speech_threshold,
        }
        if self.language:
            kwargs["language"] = self.language
        return kwargs

    def to_dict(self) -> dict:
        out = asdict(self)
        out["temperature"] = list(self.temperature)
        return out
