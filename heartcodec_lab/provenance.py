"""Which parts of a run come from checkpoints and which are embedded, and the refusal to mix them.

Every model a command builds is a *component* named by the setting that points at its checkpoint
(``codec.path``, ``encoder.path``, ``teacher.path``, ``mula.path``, ``encoders.0.path``). A component
without a checkpoint is *embedded*: built into the package. Two kinds (``Provenance.models``):

* ``miniature``: the shipped miniature HeartCodec and its true encoder (``codec.path: null``,
  ``encoder=minicodec``), trained here on synthetic music: real music, far from the released model;
* ``random``: a tiny model with random weights (``codec.path=embedded:random``, the tiny vqv12,
  HeartMuLa, transcriber) or an untrained projection: right shapes, no meaning.

Embedded parts are fine on their own (demos, tests), but an embedded part next to a real
checkpoint makes output that looks like a result and is not, so :func:`check_components` refuses
that mix before any work unless ``allow_embedded`` is set. The returned :class:`Provenance` is what
outputs record (dataset_info.json, metadata rows, evaluation summary and report, training summary,
exported projection config).

The console commands' runner (:mod:`heartcodec_lab.cli.runner`) turns such refusals (and checkpoint
errors) into one ``prog: error: ...`` line and exit code 2, instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ProvenanceError(ValueError):
    """A run that would mix embedded and checkpoint components, or tokens of different encoders."""


MINIATURE, RANDOM = "miniature", "random"
_WHAT = {
    MINIATURE: "the shipped miniature HeartCodec, trained on synthetic music",
    RANDOM: "built-in random weights, not meaningful",
}
_EMBEDDED_PREFIX = "embedded:"  # heartcodec_lab.codec.checkpoints.EMBEDDED_PREFIX, without importing torch


def is_embedded(path) -> bool:
    """True when a ``*.path`` setting names no checkpoint (null / empty / a built-in ``embedded:NAME``)."""
    text = "" if path is None else str(path).strip()
    return text in ("", "null", "None") or text.startswith(_EMBEDDED_PREFIX)


@dataclass(frozen=True)
class Component:
    """One model of a run. ``path`` None = embedded. ``fix`` is the setting to suggest (default ``setting=...``);
    ``model`` which embedded model it is (``miniature`` or ``random``, the default)."""

    name: str
    setting: str
    path: str | None = None
    fix: str | None = None
    model: str = RANDOM

    @property
    def embedded(self) -> bool:
        return is_embedded(self.path)


@dataclass
class Provenance:
    """Which components were embedded (and as which model) and which came from checkpoints."""

    embedded: list[str] = field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)
    allow_embedded: bool = False
    models: dict[str, str] = field(default_factory=dict)  # embedded name -> miniature | random

    def as_dict(self) -> dict:
        return {
            "embedded": list(self.embedded),
            "models": dict(self.models),
            "checkpoints": dict(self.checkpoints),
            "allow_embedded": self.allow_embedded,
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> Provenance:
        data = data or {}
        embedded = list(data.get("embedded") or [])
        models = dict(data.get("models") or {n: RANDOM for n in embedded})  # records older than the miniature
        return cls(embedded, dict(data.get("checkpoints") or {}), bool(data.get("allow_embedded")), models)

    def headline(self) -> str:
        """One sentence for the first lines of a report or log."""
        if not self.embedded:
            return "All components loaded from checkpoints: " + ", ".join(sorted(self.checkpoints)) + "."
        mixed = " (mixed with checkpoints: allow_embedded=true)" if self.checkpoints else ""
        return f"EMBEDDED components: {', '.join(self.embedded)} ({_details(self.embedded, self.models)}){mixed}."


def _details(names: list[str], models: dict[str, str]) -> str:
    """What the embedded ``names`` are: one phrase, or ``members: phrase`` per model when they differ."""
    groups = [(m, [n for n in names if models.get(n, RANDOM) == m]) for m in (MINIATURE, RANDOM)]
    groups = [(m, members) for m, members in groups if members]
    if len(groups) == 1:
        return _WHAT[groups[0][0]]
    return "; ".join(f"{', '.join(members)}: {_WHAT[m]}" for m, members in groups)


def codec_component(path, name: str = "codec", setting: str = "codec.path") -> Component:
    """The codec: ``null`` / ``embedded:minicodec`` is the miniature, ``embedded:random`` the random tiny codec.

    An unknown ``embedded:NAME`` raises the codec loader's one-line error here, before any work.
    """
    from heartcodec_lab.codec.checkpoints import embedded_codec_name

    builtin = embedded_codec_name(path)
    return Component(name, setting, path, model=MINIATURE if builtin == "minicodec" else RANDOM)


def _official_fix(setting: str) -> str:
    """How to name a real encoder instead of the miniature's: a Hydra group switch, or the list entry's kind."""
    group = setting[: -len(".path")] if setting.endswith(".path") else setting
    switch = f"{group}=official" if group in ("encoder", "teacher") else f"{group}.kind=official"
    return f"{switch} {setting}=<HeartCodec-oss-encoder folder> (the minicodec encoder only fits the miniature codec)"


def encoder_component(name: str, setting: str, kind: str | None, path) -> Component:
    """An encoder (or teacher) component; an exported projection trained with embedded parts counts as embedded.

    Its ``projection_config.json`` records the training run's provenance: a projection fitted to the
    embedded random codec is as random, for a real codec, as no checkpoint at all. The ``minicodec``
    kind without a path is the miniature's shipped true encoder.
    """
    import json
    from pathlib import Path

    if kind == "minicodec" and is_embedded(path):
        return Component(name, setting, None, fix=_official_fix(setting), model=MINIATURE)
    if kind == "projection" and not is_embedded(path):
        folder = Path(str(path)).expanduser()
        config = (folder if folder.is_dir() else folder.parent) / "projection_config.json"
        try:
            recorded = Provenance.from_dict(json.loads(config.read_text()).get("provenance"))
        except (OSError, ValueError, AttributeError):
            recorded = Provenance()  # unreadable here: the loader reports it with its own message
        if recorded.embedded:
            only_miniature = all(recorded.models.get(n) == MINIATURE for n in recorded.embedded)
            return Component(
                name,
                setting,
                None,
                fix=f"{setting}=<a projection trained on checkpoints> ({path} was trained with "
                f"embedded {', '.join(recorded.embedded)})",
                model=MINIATURE if only_miniature else RANDOM,
            )
    return Component(name, setting, path)


def check_components(components: list[Component], allow_embedded: bool = False) -> Provenance:
    """Refuse embedded components next to checkpoint ones (unless ``allow_embedded``); return the provenance."""
    real = [c for c in components if not c.embedded]
    embedded = [c for c in components if c.embedded]
    models = {c.name: c.model for c in embedded}
    if real and embedded and not allow_embedded:
        missing = ", ".join(c.fix or f"{c.setting}=..." for c in embedded)
        loaded = ", ".join(f"{c.setting}={c.path}" for c in real)
        names = [c.name for c in embedded]
        raise ProvenanceError(
            f"{', '.join(names)} would be embedded ({_details(names, models)}) next to the "
            f"checkpoint(s) {loaded}; set {missing} (or allow_embedded=true to mix them on purpose)"
        )
    return Provenance([c.name for c in embedded], {c.name: str(c.path) for c in real}, bool(allow_embedded), models)
