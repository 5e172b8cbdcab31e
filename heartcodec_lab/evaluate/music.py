"""Music-aware evaluation: tonal/rhythmic fidelity, lyric intelligibility, codebook depth, lyric adherence.

Per (clip, encoder) record blocks, added next to ``reconstruction``:

    music   chroma_similarity, onset_corr, tempo_bpm_original, tempo_bpm_reconstruction, tempo_diff_bpm
    lyrics  transcript_original, transcript_reconstruction,
            wer / cer                 reconstruction transcript vs the original's transcript
            wer_vs_lyrics / cer_vs_lyrics              reconstruction transcript vs the clip's lyrics
            original_wer_vs_lyrics / original_cer_vs_lyrics   the original's transcript vs its lyrics
    depth   {"1": reconstruction metrics, ..., "8": ...} decoding from the first k quantizer levels

``mode=adherence`` (lyric adherence of generated songs): each song's transcript against the
lyrics it was asked to sing (``<name>.lyrics``), one record per song in ``songs.jsonl``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from heartcodec_lab.audio import audio_extensions
from heartcodec_lab.evaluate.metrics.lyrics import error_rates
from heartcodec_lab.evaluate.metrics.music import MUSIC_METRICS, music_metrics
from heartcodec_lab.evaluate.results import JsonlLog
from heartcodec_lab.evaluate.summary import RECONSTRUCTION_METRICS, describe_values

log = logging.getLogger(__name__)

LYRIC_METRICS = ("wer", "cer", "wer_vs_lyrics", "cer_vs_lyrics", "original_wer_vs_lyrics", "original_cer_vs_lyrics")
ADHERENCE_METRICS = ("wer", "cer")


def _enabled(node) -> bool:
    return bool(node and node.get("enabled"))


class MusicMetrics:
    """What ``music_metrics``, ``lyrics`` and ``codebook_depth`` in the config ask for, for one clip."""

    def __init__(self, cfg: DictConfig, ctx):
        self.cfg, self.ctx = cfg, ctx
        self.music = bool(cfg.get("music_metrics", False))
        self.lyrics = _enabled(cfg.get("lyrics"))
        depth = cfg.get("codebook_depth")
        self.depth_levels = [int(k) for k in depth.levels] if _enabled(depth) else []
        self._transcriber = None
        self._original_transcripts: dict[str, str] = {}

    @property
    def transcriber(self):
        if self._transcriber is None:
            from heartcodec_lab.transcribe import load_transcriber

            t = self.cfg.transcriber
            settings = OmegaConf.to_container(t.get("settings") or OmegaConf.create({}), resolve=True)
            self._transcriber = load_transcriber(
                t.get("path"), device=t.get("device", "cpu"), dtype=t.get("dtype"), settings=settings
            )
        return self._transcriber

    def describe(self) -> dict:
        out: dict = {"music_metrics": self.music, "codebook_depth_levels": self.depth_levels}
        if self._transcriber is not None:
            out["transcriber"] = self._transcriber.describe()
        return out

    def original_transcript(self, clip: str, audio: torch.Tensor) -> str:
        if clip not in self._original_transcripts:
            self._original_transcripts[clip] = self.transcriber.transcribe(audio, self.ctx.sample_rate)
        return self._original_transcripts[clip]

    def lyric_scores(self, clip: str, audio: torch.Tensor, recon: torch.Tensor, lyrics: str) -> dict:
        original = self.original_transcript(clip, audio)
        rebuilt = self.transcriber.transcribe(recon, self.ctx.sample_rate)
        record = {"transcript_original": original, "transcript_reconstruction": rebuilt}
        record.update(error_rates(original, rebuilt))
        if lyrics.strip():
            record.update({f"{k}_vs_lyrics": v for k, v in error_rates(lyrics, rebuilt).items()})
            record.update({f"original_{k}_vs_lyrics": v for k, v in error_rates(lyrics, original).items()})
        return record

    def clip_blocks(
        self, clip: str, audio: torch.Tensor, recon: torch.Tensor, tokens: torch.Tensor, lyrics: str
    ) -> dict:
        """The ``music`` / ``lyrics`` / ``depth`` blocks for one clip's reconstruction ``recon``."""
        blocks: dict = {}
        if self.music:
            blocks["music"] = music_metrics(audio, recon, self.ctx.sample_rate)
        if self.lyrics:
            blocks["lyrics"] = self.lyric_scores(clip, audio, recon, lyrics)
        if self.depth_levels:
            blocks["depth"] = {}
            for k in self.depth_levels:
                partial = self.ctx.detokenize(tokens, num_quantizers=k)[..., : audio.shape[-1]]
                blocks["depth"][str(k)] = self.ctx.metrics(audio, partial)
        return blocks


def summarize_music(records: list[dict]) -> dict:
    """Aggregate the blocks above over one encoder's records (mean/median/std per metric)."""
    out: dict = {}
    music = [r["music"] for r in records if r.get("music")]
    if music:
        out["music"] = {m: describe_values([x.get(m) for x in music]) for m in MUSIC_METRICS}
    lyrics = [r["lyrics"] for r in records if r.get("lyrics")]
    if lyrics:
        out["lyrics"] = {m: describe_values([x.get(m) for x in lyrics]) for m in LYRIC_METRICS}
    depth = [r["depth"] for r in records if r.get("depth")]
    if depth:
        levels = sorted({int(k) for d in depth for k in d})
        out["depth"] = {
            str(k): {
                m: describe_values([d[str(k)].get(m) for d in depth if str(k) in d]) for m in RECONSTRUCTION_METRICS
            }
            for k in levels
        }
    return out


def evaluate_songs(cfg: DictConfig, ctx, out: Path, metrics: MusicMetrics) -> dict:
    """Lyric adherence: every song under ``input`` transcribed and scored against its ``.lyrics``."""
    from heartcodec_lab.data.files import find_audio_files, sidecar_text

    root = Path(cfg.input)
    exts = audio_extensions(cfg.audio.extensions)
    files = find_audio_files(root, exts)
    if not files:
        raise FileNotFoundError(f"{root}: no audio files with extensions {list(exts)}")
    records = JsonlLog(out / "songs.jsonl", ("song",), resume=cfg.get("resume", True))
    for path in files:
        song = path.relative_to(root).as_posix()
        if records.done(song=song):
            continue
        lyrics = sidecar_text(path, ".lyrics") or ""
        if not lyrics.strip():
            log.warning("%s: no .lyrics sidecar; adherence undefined", path)
        try:
            transcript = metrics.transcriber.transcribe_file(path)
        except ValueError as err:
            log.warning("skipping %s", err)
            continue
        records.append({"song": song, "lyrics": lyrics, "transcript": transcript, **error_rates(lyrics, transcript)})
    done = records.records
    return {
        "dir": str(root.resolve()),
        "songs": len(done),
        **{m: describe_values([r.get(m) for r in done]) for m in ADHERENCE_METRICS},
    }
