"""HeartTranscriptor: a Whisper lyrics transcriber run as transformers' speech-recognition pipeline.

Input audio ``[C, S]`` (or ``[S]``) at any rate is mixed to mono and resampled to 16 kHz, then
cut into 30 s chunks by the pipeline; each chunk is decoded with :class:`TranscribeSettings`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from heartcodec_lab.audio import WHISPER_SAMPLE_RATE, load_audio, resample, to_mono
from heartcodec_lab.transcribe.settings import TranscribeSettings

FOLDER_NAME = "HeartTranscriptor-oss"


class HeartTranscriptor:
    """A Whisper model + processor with the decoding settings; :meth:`transcribe` returns text."""

    def __init__(self, model, processor, settings: TranscribeSettings | None = None,
                 source: dict | None = None, device: str | torch.device = "cpu"):
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
                "automatic-speech-recognition", model=self.model, tokenizer=self.processor.tokenizer,
                feature_extractor=self.processor.feature_extractor, chunk_length_s=self.settings.chunk_length_s,
                batch_size=self.settings.batch_size, device=self.device,
            )
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
        out = self.pipeline({"raw": audio.numpy(), "sampling_rate": WHISPER_SAMPLE_RATE},
                            generate_kwargs=self.settings.generate_kwargs())
        return out["text"].strip()

    def transcribe_file(self, path: str | Path) -> str:
        """Read any audio file (mono, 16 kHz) and transcribe it; unreadable files raise ``AudioError``."""
        audio, sr = load_audio(path, sample_rate=WHISPER_SAMPLE_RATE, channels="mono", min_seconds=0.1)
        return self.transcribe(audio, sr)

    def describe(self) -> dict:
        """JSON-able identity: source (path or embedded seed) and the decoding settings."""
        return {**self.source, "settings": self.settings.to_dict()}
