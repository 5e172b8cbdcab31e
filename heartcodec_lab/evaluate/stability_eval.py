"""Token stability inside an evaluation run (``heartcodec-evaluate`` audio mode, ``heartcodec-study``).

Settings (``conf/evaluate.yaml``, group ``stability``)::

    stability:
      encoders: reference   # whose self-agreement is measured: reference | all | none | [name, ...]
      changes: null         # null: every documented change (heartcodec_lab/evaluate/stability.py)
      seed: 0
      feature_error: true   # each encoder's relative feature error vs the reference, in the RVQ's input space

Each measured (clip, encoder) record gets ``stability`` (per change: match counts and squared feature
sums, see :func:`~heartcodec_lab.evaluate.stability.clip_stability`) and, for a non-reference encoder,
``feature_error`` (``sq_error``, ``sq_reference``); :func:`summarize_stability` adds them up for
``summary.json`` (frame-weighted).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

from heartcodec_lab.evaluate.stability import (
    CEILING_CHANGE,
    clip_stability,
    rvq_input,
    split_changes,
    sum_stability,
)


def _clip_seed(seed: int, clip: str) -> int:
    """A per-clip noise seed that does not depend on the clip's position (resume-safe)."""
    return (int(seed) * 1_000_003 + int(hashlib.sha256(clip.encode()).hexdigest()[:12], 16)) % (2**62)


class StabilityEval:
    """Per-clip stability and feature-error blocks for an :class:`~heartcodec_lab.evaluate.runner.AudioEvaluation`."""

    def __init__(self, cfg, names: list[str], reference: str | None):
        """``cfg``: the ``stability`` settings (None: measure nothing, as before the option existed)."""
        options = dict(cfg) if cfg is not None else {"encoders": "none", "feature_error": False}
        which = options.get("encoders", "reference")
        if which in (None, "none", False):
            measured = []
        elif which == "reference":
            measured = [reference] if reference else []
        elif which == "all":
            measured = list(names)
        else:
            measured = list(which)
            unknown = sorted(set(measured) - set(names))
            if unknown:
                raise ValueError(f"stability.encoders names {unknown}, which are not configured encoders {names}")
        self.measured = set(measured)
        self.reference = reference
        self.changes, self.skipped = split_changes(options.get("changes"))
        self.seed = int(options.get("seed") or 0)
        self.feature_error = bool(options.get("feature_error", True)) and reference is not None
        self._reference_features: dict[str, object] = {}

    def describe(self) -> dict:
        """For ``summary.json``: what was measured, and which changes could not run here (and why)."""
        return {
            "encoders": sorted(self.measured),
            "changes": {c.name: c.description for c in self.changes},
            "skipped": dict(self.skipped),
            "seed": self.seed,
            "feature_error": self.feature_error,
            "ceiling_change": CEILING_CHANGE,
        }

    def settings(self, name: str) -> dict | None:
        """What this encoder's stability blocks depend on (None: nothing measured for it)."""
        value = {}
        if name in self.measured:
            value.update(changes=[c.name for c in self.changes], seed=self.seed)
        if self.feature_error and name != self.reference:
            value["feature_error"] = True
        return value or None

    def clip_blocks(
        self,
        name: str,
        encoder,
        clip: str,
        audio,
        sample_rate: int,
        encoded,
        reference_encoder: Callable[[], object] | None,
    ) -> dict:
        """The record entries for one (clip, encoder); ``encoded``: its :class:`EncodedAudio` of ``audio``."""
        out = {}
        if name == self.reference:
            self._reference_features = {clip: encoded.features}
        if name in self.measured and self.changes:
            out["stability"] = clip_stability(
                encoder, audio, sample_rate, self.changes, _clip_seed(self.seed, clip), base=encoded
            )
        if self.feature_error and name != self.reference and reference_encoder is not None:
            ref_encoder = reference_encoder()
            ref = self._reference_features.get(clip)
            if ref is None:  # the reference's record came from an earlier (resumed) run
                ref = ref_encoder.encode(audio, sample_rate).features
                self._reference_features = {clip: ref}
            a, b = rvq_input(ref_encoder, encoded.features), rvq_input(ref_encoder, ref)
            n = min(a.shape[0], b.shape[0])
            out["feature_error"] = {
                "sq_error": float((a[:n] - b[:n]).double().pow(2).sum()),
                "sq_reference": float(b[:n].double().pow(2).sum()),
            }
        return out


def summarize_stability(records: list[dict]) -> dict:
    """Records of one encoder -> ``{"stability": {change: rates}, "feature_error": {...}}`` (only what exists)."""
    out = {}
    blocks = [r["stability"] for r in records if r.get("stability")]
    if blocks:
        out["stability"] = sum_stability(blocks)
    errors = [r["feature_error"] for r in records if r.get("feature_error")]
    if errors:
        num, den = sum(e["sq_error"] for e in errors), sum(e["sq_reference"] for e in errors)
        out["feature_error"] = {"clips": len(errors), "relative_rvq_input": math.sqrt(num / den) if den > 0 else None}
    return out


def ceiling_of(block: dict, change: str = CEILING_CHANGE) -> list[float] | None:
    """An encoder summary block's self-agreement per level under ``change`` (None when not measured)."""
    measured = (block.get("stability") or {}).get(change)
    return measured["match_rate"] if measured else None
