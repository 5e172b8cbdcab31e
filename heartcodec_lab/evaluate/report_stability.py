"""The stability sections of ``report.md``: self-agreement tables, and agreement read against its ceiling."""

from __future__ import annotations

from heartcodec_lab.evaluate.stability import CEILING_CHANGE, format_against_ceiling
from heartcodec_lab.evaluate.stability_eval import ceiling_of


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def stability_rows(stability: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of one encoder's summed stability block: a row per change, percent per level."""
    q = max(len(b["match_rate"]) for b in stability.values())
    header = ["change", *[f"q{i} %" for i in range(q)], f"all {q} %", "feature change %"]
    rows = [
        [
            name,
            *[f"{100 * r:.1f}" for r in b["match_rate"]],
            f"{100 * b['match_rate_first_k'][-1]:.1f}",
            "n/a" if b.get("feature_change") is None else f"{100 * b['feature_change']:.2f}",
        ]
        for name, b in stability.items()
    ]
    return header, rows


def ceiling_lines(encoders: dict, reference: str | None, prefix: str = "") -> list[str]:
    """One line per encoder: its agreement with the reference next to the reference's own ceiling."""
    ceiling = ceiling_of(encoders.get(reference) or {}) if reference else None
    if ceiling is None:
        return []
    lines = []
    for name, block in encoders.items():
        agreement = (block.get("agreement") or {}).get("match_rate")
        if name == reference or not agreement:
            continue
        error = (block.get("feature_error") or {}).get("relative_rvq_input")
        tail = f" Relative feature error (RVQ input space): {100 * error:.2f} %." if error is not None else ""
        lines.append(f"- **{prefix}{name}**: {format_against_ceiling(agreement, ceiling)}.{tail}\n")
    return lines


def stability_sections(runs) -> list[str]:
    """Markdown for every run's stability blocks (empty when none was measured)."""
    parts = []
    for run in runs:
        encoders = run.summary.get("encoders", {})
        measured = {name: block["stability"] for name, block in encoders.items() if block.get("stability")}
        if not measured:
            continue
        prefix = "" if len(runs) == 1 else f"{run.label}/"
        params = run.summary.get("stability_params") or {}
        reference = run.summary.get("config", {}).get("reference")
        if not parts:
            parts.append("## Token stability\n")
            parts.append(
                "Each encoder against itself after changes nobody hears (see docs/stability.md): share of "
                "frames whose code at each level is unchanged (delays compare frames aligned to the "
                "moved content), and the relative RMS change of the features in the RVQ's input space. "
                "Deep levels of real encoders flip under such changes, so no encoder can agree with "
                "a reference more often than the reference agrees with itself.\n"
            )
        for note_name, why in (params.get("skipped") or {}).items():
            parts.append(f"Skipped `{note_name}`: {why}.\n")
        for name, stability in measured.items():
            header, rows = stability_rows(stability)
            parts.append(f"### {prefix}{name}\n")
            parts.append(_table(header, rows))
        lines = ceiling_lines(encoders, reference, prefix)
        if lines:
            parts.append(
                f"Agreement with the reference `{reference}` beside its ceiling (its own agreement under "
                f"`{params.get('ceiling_change', CEILING_CHANGE)}`):\n"
            )
            parts += lines + ["\n"]
    return parts


def stability_overview(encoders: dict, reference: str | None, levels: int = 4) -> list[str]:
    """Compact stability markdown for the study report: every encoder's self-agreement per change (first
    ``levels`` levels in one cell), its feature error, and its agreement beside the reference's ceiling."""
    measured = {name: block["stability"] for name, block in encoders.items() if block.get("stability")}
    if not measured:
        return []
    changes = list(dict.fromkeys(c for s in measured.values() for c in s))
    header = ["encoder", "feature error % (vs reference)", *changes]
    rows = []
    for name, stability in measured.items():
        error = (encoders[name].get("feature_error") or {}).get("relative_rvq_input")
        cells = [
            "/".join(f"{100 * r:.0f}" for r in stability[c]["match_rate"][:levels]) if c in stability else "n/a"
            for c in changes
        ]
        rows.append(
            [name, "reference" if name == reference else ("n/a" if error is None else f"{100 * error:.2f}"), *cells]
        )
    parts = [
        "## Token stability\n",
        (
            f"Each encoder against itself after changes nobody hears (docs/stability.md): percent of frames whose "
            f"code is unchanged at levels q0/q1/.../q{levels - 1}; feature error: relative RMS distance to the "
            "reference's features in the RVQ's input space.\n"
        ),
        _table(header, rows),
    ]
    lines = ceiling_lines(encoders, reference)
    if lines:
        parts += [
            f"Agreement with the reference beside its ceiling (its own agreement under `{CEILING_CHANGE}`):\n",
            *lines,
            "\n",
        ]
    return parts
