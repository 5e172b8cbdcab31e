"""HeartTranscriptor: a Whisper lyrics transcriber run as transformers' speech-recognition pipeline.

Input audio ``[C, S]`` (or ``[S]``) at any rate is mixed to mono and resampled to 16 kHz, then
cut into 30 s chunks by the pipeline; each chunk is decoded with :class:`TranscribeSettings`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from heartcodec_lab.audio import WHISPER_SAMPLE_RATE, load_audio, resample, to_mono
from heartcodec_lab.transcribe.settings import TranscribeSettings

FOLDER_NAME = "HeartTranscriptor-oss"


# transformers' Whisper generate() hands the suppress-token lists to the generic generate() next to the
# generation config (its own workaround, transformers PR #48108), which then warns that both were given:
# nothing a caller can pass differently, so that one message is dropped.
class _DropWhisperOwnKwargsWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.getMessage())
        return not (
            text.startswith("Passing `generation_config` together with generation-related arguments=")
            and "suppress_tokens" in text
        )


_WHISPER_FILTER = _DropWhisperOwnKwargsWarning()


class HeartTranscriptor:
    """A Whisper model + processor with the decoding settings; :meth:`transcribe` returns text."""

    def __init__(
        self,
        model,
        processor,
        settings: TranscribeSettings | None = None,
        source: dict | None = None,
        device: str | torch.device = "cpu",
    ):
        self.model = model.eval()
        self.processor = processor
        self.settings = settings or TranscribeSettings()
        self.source = source or {"kind": "unknown", "path": None}
        self.device = torch.device(device)
        self._pipeline = None

    @property
    def pipeline(self):
        """transformers' ``automatic-speech-recognition`` pipeline over this model (built once)."""
        if self._pipeline is None:
            from transformers import pipeline

            self._pipeline = pipeline(
                "automatic-speech-recognition",
                model=self.model,
                tokenizer=self.processor.tokenizer,
                feature_extractor=self.processor.feature_extractor,
                chunk_length_s=self.settings.chunk_length_s,
                batch_size=self.settings.batch_size,
                device=self.device,
                ignore_warning=True,  # 30 s chunks are heartlib's way of transcribing lyrics, chosen on purpose
            )
            generation_logger = logging.getLogger("transformers.generation.utils")
            if _WHISPER_FILTER not in generation_logger.filters:
                generation_logger.addFilter(_WHISPER_FILTER)
        return self._pipeline

    @torch.no_grad()
    def transcribe(self, audio: torch.Tensor | np.ndarray, sample_rate: int) -> str:
        """Audio ``[C, S]`` or ``[S]`` -> the transcript (whitespace-trimmed)."""
        audio = torch.as_tensor(audio, dtype=torch.float32)
        if audio.dim() == 2:
            audio = to_mono(audio)[0] if audio.shape[0] > 1 else audio[0]
        if audio.dim() != 1 or audio.numel() == 0:
            raise ValueError(f"audio must be [C, S] or [S] with samples, got {tuple(audio.shape)}")
        if sample_rate != WHISPER_SAMPLE_RATE:
            audio = resample(audio[None], sample_rate, WHISPER_SAMPLE_RATE)[0]
        if self.settings.seed is not None:
            torch.manual_seed(int(self.settings.seed))
        out = self.pipeline(
            {"raw": audio.numpy(), "sampling_rate": WHISPER_SAMPLE_RATE}, generate_kwargs=self._generate_kwargs()
        )
        return out["text"].strip()

    def _generate_kwargs(self) -> dict:
        """The settings as transformers' Whisper expects them: the length bound as ``max_length`` (Whisper's
        generate adds its prompt tokens to it, so it bounds the new tokens like ``max_new_tokens`` would; given as
        ``max_new_tokens`` it meets the default ``max_length`` that transformers fills in and warns per chunk)."""
        kwargs = self.settings.generate_kwargs()
        kwargs["max_length"] = kwargs.pop("max_new_tokens")
        return kwargs

    def transcribe_file(self, path: str | Path) -> str:
        """Read any audio file (mono, 16 kHz) and transcribe it; unreadable files raise ``AudioError``."""
        audio, sr = load_audio(path, sample_rate=WHISPER_SAMPLE_RATE, channels="mono", min_seconds=0.1)
        return self.transcribe(audio, sr)

    def describe(self) -> dict:
        """JSON-able identity: source (path or embedded seed) and the decoding settings."""
        return {**self.source, "settings": self.settings.to_dict()}
