"""Report sections for the music-aware metrics: fidelity, lyric intelligibility, codebook depth, adherence."""

from __future__ import annotations

from pathlib import Path

from heartcodec_lab.evaluate import plots
from heartcodec_lab.evaluate.metrics.music import MUSIC_METRICS
from heartcodec_lab.evaluate.music import ADHERENCE_METRICS, LYRIC_METRICS
from heartcodec_lab.evaluate.summary import RECONSTRUCTION_METRICS
from heartcodec_lab.tables import markdown_table

# which way is better, for the table headers
BETTER = {
    "chroma_similarity": "higher, 1 = same pitch classes",
    "onset_corr": "higher, 1 = same onsets",
    "tempo_diff_bpm": "lower",
    **{m: "lower" for m in LYRIC_METRICS},
}


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _mean_std(stats: dict | None) -> str:
    if not stats or stats.get("mean") is None:
        return "n/a"
    return f"{_fmt(stats['mean'])} ± {stats['std']:.2g}"


def _blocks(runs, key: str):
    for run in runs:
        for name, block in run.summary.get("encoders", {}).items():
            if block.get(key):
                yield (name if len(runs) == 1 else f"{run.label}/{name}"), run, name, block[key]


def fidelity_section(runs) -> list[str]:
    rows = [[label] + [_mean_std(b.get(m)) for m in MUSIC_METRICS] for label, _, _, b in _blocks(runs, "music")]
    if not rows:
        return []
    return [
        "## Tonal and rhythmic fidelity\n",
        "Original vs reconstruction, mono at 22.05 kHz (librosa): chroma_similarity = mean frame cosine of "
        "12-bin chroma; onset_corr = Pearson correlation of onset-strength envelopes; tempo_diff_bpm = "
        "|tempo(original) - tempo(reconstruction)|. Mean ± std over clips:\n",
        markdown_table(["encoder"] + [f"{m} ({BETTER[m]})" for m in MUSIC_METRICS], rows),
    ]


def lyrics_section(runs) -> list[str]:
    rows, examples = [], []
    for label, run, name, block in _blocks(runs, "lyrics"):
        rows.append([label] + [_mean_std(block.get(m)) for m in LYRIC_METRICS])
        for record in [r for r in run.items if r.get("encoder") == name and r.get("lyrics")][:3]:
            lyr = record["lyrics"]
            examples.append(
                [
                    label,
                    f"`{record['clip']}`",
                    lyr["transcript_original"] or "(empty)",
                    lyr["transcript_reconstruction"] or "(empty)",
                ]
            )
    if not rows:
        return []
    parts = [
        "## Lyric intelligibility\n",
        "Word / character error rates (jiwer, after lower-casing and removing section markers and "
        "punctuation; lower is better, 0 = identical). `wer`/`cer`: transcript of the reconstruction vs "
        "that of the original; `*_vs_lyrics`: vs the clip's `.lyrics`; `original_*_vs_lyrics`: the "
        "original's own transcript vs its lyrics (the transcriber's floor). Mean ± std over clips:\n",
        markdown_table(["encoder", *LYRIC_METRICS], rows),
    ]
    parts += ["\nFirst transcripts:\n", markdown_table(["encoder", "clip", "original", "reconstruction"], examples)]
    return parts


def depth_section(runs, out: Path) -> list[str]:
    curves = {m: {} for m in RECONSTRUCTION_METRICS}
    rows = []
    for label, _, _, depth in _blocks(runs, "depth"):
        levels = sorted(depth, key=int)
        for m in RECONSTRUCTION_METRICS:
            curves[m][label] = [(int(k), depth[k][m]["mean"]) for k in levels]
        rows += [[label, k] + [_mean_std(depth[k][m]) for m in RECONSTRUCTION_METRICS] for k in levels]
    if not rows:
        return []
    plots.depth_curves(curves, out / "plots" / "codebook_depth.png")
    return [
        "## Codebook depth\n",
        "Reconstruction when decoding only the first k of the 8 quantizer levels (the sum of the first k "
        "residual code vectors through `project_out`): k levels = 12.5 * 13 * k bit/s. Mean ± std over clips:\n",
        markdown_table(["encoder", "k", *RECONSTRUCTION_METRICS], rows),
        "![codebook depth](plots/codebook_depth.png)\n",
    ]


def adherence_section(runs) -> list[str]:
    rows = []
    for run in runs:
        songs = run.summary.get("songs")
        if songs:
            rows.append([run.label, str(songs["songs"])] + [_mean_std(songs.get(m)) for m in ADHERENCE_METRICS])
    if not rows:
        return []
    return [
        "## Lyric adherence of generated songs\n",
        "Each song's transcript against the lyrics it was asked to sing (`<name>.lyrics`), same "
        "normalisation; lower is better:\n",
        markdown_table(["run", "songs"] + [f"{m} (lower)" for m in ADHERENCE_METRICS], rows),
    ]


def music_sections(runs, out: Path) -> list[str]:
    return fidelity_section(runs) + lyrics_section(runs) + depth_section(runs, out) + adherence_section(runs)
