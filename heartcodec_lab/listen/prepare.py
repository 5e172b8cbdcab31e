"""Build a MUSHRA test folder (see :mod:`heartcodec_lab.listen.manifest`) from folders of conditions, from an
evaluation run, or by reconstructing a reference folder with encoders.

Per item (a reference file and the files of the same name in every condition folder): an excerpt of the same
span from each, the hidden reference and the BS.1534-3 low-pass anchors made from the reference excerpt,
every stimulus loudness-matched (BS.1770) to a common target, faded in and out, written as 16-bit WAV.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import torch

from heartcodec_lab.atomic import atomic_write_text
from heartcodec_lab.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, load_audio, save_audio
from heartcodec_lab.listen.manifest import (
    FORMAT_VERSION,
    HIDDEN_REFERENCE,
    MANIFEST,
    TestFolderError,
    sha256_file,
)
from heartcodec_lab.listen.signal import (
    ANCHOR_CUTOFFS_HZ,
    anchor_name,
    fade,
    lowpass,
    match_loudness,
)

log = logging.getLogger(__name__)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def audio_key(relative: str) -> str:
    """Match key of a file: its relative path without audio suffixes (``a/song.flac.wav`` -> ``a/song``, as the
    evaluation names its saved reconstructions after the original's file name)."""
    key = relative
    while Path(key).suffix.lower() in AUDIO_EXTENSIONS:
        key = key[: -len(Path(key).suffix)]
    return key


def index_folder(folder: str | Path) -> dict[str, Path]:
    """``{key: path}`` of every audio file under ``folder``; two files with one key are refused."""
    from heartcodec_lab.data.files import find_audio_files

    folder = Path(folder)
    found: dict[str, Path] = {}
    for path in find_audio_files(folder):
        key = audio_key(path.relative_to(folder).as_posix())
        if key in found:
            raise TestFolderError(f"{folder}: {found[key].name} and {path.name} both match item {key!r}")
        found[key] = path
    if not found:
        raise TestFolderError(f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    return found


def condition_folders(conditions: Sequence[str] | Mapping[str, str]) -> dict[str, Path]:
    """``[dir, ...]`` (named after the folders) or ``{name: dir}`` -> ``{name: Path}``, names checked."""
    if isinstance(conditions, Mapping):
        named = {str(k): Path(v) for k, v in conditions.items()}
    else:
        named = {}
        for d in conditions:
            name = Path(d).resolve().name
            if name in named:
                raise TestFolderError(
                    f"two condition folders are named {name!r}; name them: conditions='{{a: DIR_A, b: DIR_B}}'"
                )
            named[name] = Path(d)
    reserved = {HIDDEN_REFERENCE, "reference", *(anchor_name(c) for c in ANCHOR_CUTOFFS_HZ)}
    for name, folder in named.items():
        if not NAME.match(name) or name in reserved:
            raise TestFolderError(
                f"condition name {name!r} ({folder}): use letters, digits, '_', '.', '-' and none of {sorted(reserved)}"
            )
        if not folder.is_dir():
            raise TestFolderError(f"{folder}: condition folder not found")
    return named


def conditions_from_evaluation(run_dir: str | Path) -> tuple[Path, dict[str, Path]]:
    """(reference folder, {encoder: reconstruction folder}) of a ``heartcodec-evaluate`` run made with
    ``save_reconstructions=true`` (reconstructions/<encoder>/) or with ``estimate_dir``."""
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise TestFolderError(f"{run_dir}: not an evaluation run folder (no summary.json)")
    config = json.loads(summary_path.read_text(encoding="utf-8")).get("config", {})
    # `input`/`estimate` since the one vocabulary; `audio_dir`/`estimate_dir` in runs made before it
    reference = config.get("input") if config.get("mode") in ("encoders", "pairs") else config.get("audio_dir")
    estimate = config.get("estimate") or config.get("estimate_dir")
    if not reference or not isinstance(reference, str):
        raise TestFolderError(
            f"{summary_path}: the run evaluated no audio folder (mode=encoders or pairs), nothing to listen to"
        )
    conditions = {}
    recon = run_dir / "reconstructions"
    if recon.is_dir():
        conditions = {p.name: p for p in sorted(recon.iterdir()) if p.is_dir()}
    if estimate:
        conditions[config.get("estimate_name") or "estimate"] = Path(estimate)
    if not conditions:
        raise TestFolderError(
            f"{run_dir}: no reconstructions/ folder; rerun heartcodec-evaluate with "
            "save_reconstructions=true (and resume=false if its items are already done)"
        )
    return Path(reference), conditions


def reconstruct_conditions(
    reference: Path,
    encoders: Sequence[Mapping],
    codec,
    out: Path,
    start_s: float,
    seconds: float,
    detokenize=None,
    max_items: int | None = None,
) -> dict[str, Path]:
    """Encode + detokenize the excerpt of every reference file with each encoder ``{name, kind, path}`` into
    ``out/<name>/<key>.wav``; returns the condition folders. Files already there are kept (a rerun resumes)."""
    from heartcodec_lab.codec import DetokenizeSettings
    from heartcodec_lab.encoders import build_encoder

    settings = detokenize or DetokenizeSettings()
    items = list(index_folder(reference).items())[: max_items or None]
    folders = {}
    for spec in encoders:
        name = str(spec["name"])
        encoder = build_encoder(spec["kind"], spec.get("path"), codec)
        folders[name] = out / name
        for key, path in items:
            target = out / name / f"{key}.wav"
            if target.is_file():
                continue
            audio = _excerpt(path, start_s, seconds)
            with torch.inference_mode():
                wav = settings.decode(codec, encoder.tokenize(audio, SAMPLE_RATE))[:, : audio.shape[-1]]
            save_audio(target, wav.float().cpu(), SAMPLE_RATE)
            log.info("reconstructed %s with %s", key, name)
    return folders


def _excerpt(path: Path, start_s: float, seconds: float) -> torch.Tensor:
    audio, _ = load_audio(path, sample_rate=SAMPLE_RATE, channels="stereo")
    start = round(start_s * SAMPLE_RATE)
    if start >= audio.shape[-1]:
        raise TestFolderError(f"{path}: shorter ({audio.shape[-1] / SAMPLE_RATE:.2f} s) than excerpt.start={start_s}")
    return audio[:, start : start + round(seconds * SAMPLE_RATE)]


def prepare_test(
    output: str | Path,
    reference: str | Path,
    conditions: Sequence[str] | Mapping[str, str],
    *,
    seconds: float = 10.0,
    start: float = 0.0,
    fade_ms: float = 20.0,
    target_lufs: float = -23.0,
    anchors: Sequence[float] = ANCHOR_CUTOFFS_HZ,
    title: str = "Listening test",
    max_items: int | None = None,
    min_seconds: float = 1.0,
    excerpted: bool = False,
) -> Path:
    """Write a test folder; returns the manifest path.

    ``excerpted``: the condition files already hold the excerpt (they start at ``start`` of the reference),
    as :func:`reconstruct_conditions` writes them.
    """
    output = Path(output)
    for existing in (MANIFEST, "ratings.sqlite"):
        if (output / existing).exists():
            raise TestFolderError(f"{output / existing}: a test is already there; choose another output folder")
    if seconds < min_seconds:
        raise TestFolderError(f"excerpt.seconds={seconds}: at least {min_seconds} s (loudness needs 400 ms blocks)")
    folders = condition_folders(conditions)
    if not folders:
        raise TestFolderError("no conditions: pass conditions=[DIR_A,DIR_B], encoders=[...] or evaluation=RUN_DIR")
    refs = index_folder(reference)
    indexed = {name: index_folder(folder) for name, folder in folders.items()}
    keys, skipped = [], []
    for key in refs:
        missing = [name for name, files in indexed.items() if key not in files]
        (skipped.append({"item": key, "missing": missing}) if missing else keys.append(key))
    if skipped:
        log.warning(
            "%d reference file(s) lack a condition and are left out: %s",
            len(skipped),
            ", ".join(s["item"] for s in skipped[:5]),
        )
    keys = keys[: max_items or None]
    if not keys:
        raise TestFolderError(
            f"{reference}: no file name appears in every condition folder "
            f"({', '.join(f'{n}: {f}' for n, f in folders.items())})"
        )
    trials, used = [], set()
    for index, key in enumerate(keys, start=1):
        trial_id = f"t{index:03d}"
        ref = _excerpt(refs[key], start, seconds)
        signals = {HIDDEN_REFERENCE: ref}
        for name, files in indexed.items():
            signals[name] = _excerpt(files[key], 0.0 if excerpted else start, seconds)
        length = min(x.shape[-1] for x in signals.values())
        if length < min_seconds * SAMPLE_RATE:
            raise TestFolderError(
                f"item {key!r}: only {length / SAMPLE_RATE:.2f} s in common after "
                f"excerpt.start={start}; at least {min_seconds} s needed"
            )
        signals = {name: x[:, :length] for name, x in signals.items()}
        for cutoff in anchors:
            signals[anchor_name(cutoff)] = lowpass(signals[HIDDEN_REFERENCE], SAMPLE_RATE, float(cutoff))
        signals = {name: fade(x, SAMPLE_RATE, fade_ms) for name, x in signals.items()}
        matched, levels = match_loudness(signals, SAMPLE_RATE, target_lufs)
        stimuli = {}
        for name, audio in matched.items():
            path = save_audio(output / "stimuli" / trial_id / f"{name}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
            stimuli[name] = {
                "id": _new_id(used),
                "file": path.relative_to(output).as_posix(),
                "sha256": sha256_file(path),
                "source": str(
                    refs[key] if name == HIDDEN_REFERENCE or name.startswith("anchor_") else indexed[name][key]
                ),
                **levels[name],
            }
        reference_entry = {**stimuli[HIDDEN_REFERENCE], "id": _new_id(used)}
        trials.append(
            {
                "id": trial_id,
                "item": key,
                "seconds": length / SAMPLE_RATE,
                "reference": reference_entry,
                "stimuli": stimuli,
            }
        )
        log.info("trial %s: %s (%d conditions)", trial_id, key, len(stimuli))
    manifest = {
        "format_version": FORMAT_VERSION,
        "test_id": secrets.token_hex(8),
        "title": title,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sample_rate": SAMPLE_RATE,
        "settings": {
            "seconds": seconds,
            "start": start,
            "fade_ms": fade_ms,
            "target_lufs": target_lufs,
            "anchors_hz": [float(c) for c in anchors],
            "loudness": "ITU-R BS.1770-4 (torchaudio), "
            "then one common shift per trial keeping every peak at or below -1 dBFS",
        },
        "sources": {"reference": str(reference), "conditions": {n: str(f) for n, f in folders.items()}},
        "conditions": [HIDDEN_REFERENCE, *(anchor_name(c) for c in anchors), *folders],
        "trials": trials,
        "skipped": skipped,
    }
    # written last: a prepare killed half-way leaves no manifest, and a rerun starts clean
    return atomic_write_text(output / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def _new_id(used: set) -> str:
    while True:
        value = secrets.token_hex(6)
        if value not in used:
            used.add(value)
            return value
