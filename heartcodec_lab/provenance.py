"""Which parts of a run come from checkpoints and which are embedded, and the refusal to mix them.

Every model a command builds is a *component* named by the setting that points at its checkpoint
(``codec.path``, ``encoder.path``, ``teacher.path``, ``mula.path``, ``encoders.0.path``). A component
without a checkpoint is *embedded*: a built-in tiny model with random weights (or an untrained
projection). Embedded parts are fine on their own (demos, tests), but an embedded part next to a
real checkpoint makes meaningless output that looks like a result, so :func:`check_components`
refuses that mix before any work unless ``allow_embedded`` is set. The returned :class:`Provenance`
is what outputs record (dataset_info.json, metadata rows, evaluation summary and report, training
summary, exported projection config).

:func:`one_line_errors` turns such refusals (and checkpoint errors) into one ``prog: error: ...``
line and a non-zero exit in the console commands, instead of a traceback.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from typing import Callable

EXIT_REFUSED = 1


class ProvenanceError(ValueError):
    """A run that would mix embedded and checkpoint components, or tokens of different encoders."""


def is_embedded(path) -> bool:
    """True when a ``*.path`` setting names no checkpoint (null / empty)."""
    return path is None or str(path).strip() in ("", "null", "None")


@dataclass(frozen=True)
class Component:
    """One model of a run. ``path`` None = embedded. ``fix`` is the setting to suggest (default ``setting=...``)."""

    name: str
    setting: str
    path: str | None = None
    fix: str | None = None

    @property
    def embedded(self) -> bool:
        return is_embedded(self.path)


@dataclass
class Provenance:
    """Which components were embedded and which came from checkpoints."""

    embedded: list[str] = field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)
    allow_embedded: bool = False

    def as_dict(self) -> dict:
        return {"embedded": list(self.embedded), "checkpoints": dict(self.checkpoints),
                "allow_embedded": self.allow_embedded}

    @classmethod
    def from_dict(cls, data: dict | None) -> Provenance:
        data = data or {}
        return cls(list(data.get("embedded") or []), dict(data.get("checkpoints") or {}),
                   bool(data.get("allow_embedded")))

    def headline(self) -> str:
        """One sentence for the first lines of a report or log."""
        if not self.embedded:
            return "All components loaded from checkpoints: " + ", ".join(sorted(self.checkpoints)) + "."
        mixed = " (mixed with checkpoints: allow_embedded=true)" if self.checkpoints else ""
        return (f"EMBEDDED components (built-in random weights, not meaningful): {', '.join(self.embedded)}"
                f"{mixed}.")


def encoder_component(name: str, setting: str, kind: str | None, path) -> Component:
    """An encoder (or teacher) component; an exported projection trained with embedded parts counts as embedded.

    Its ``projection_config.json`` records the training run's provenance: a projection fitted to the
    embedded random codec is as random, for a real codec, as no checkpoint at all.
    """
    import json
    from pathlib import Path

    if kind == "projection" and not is_embedded(path):
        folder = Path(str(path)).expanduser()
        config = (folder if folder.is_dir() else folder.parent) / "projection_config.json"
        try:
            trained_with = (json.loads(config.read_text()).get("provenance") or {}).get("embedded") or []
        except (OSError, ValueError, AttributeError):
            trained_with = []  # unreadable here: the loader reports it with its own message
        if trained_with:
            return Component(name, setting, None,
                             fix=f"{setting}=<a projection trained on checkpoints> ({path} was trained with "
                                 f"embedded {', '.join(trained_with)})")
    return Component(name, setting, path)


def check_components(components: list[Component], allow_embedded: bool = False) -> Provenance:
    """Refuse embedded components next to checkpoint ones (unless ``allow_embedded``); return the provenance."""
    real = [c for c in components if not c.embedded]
    embedded = [c for c in components if c.embedded]
    if real and embedded and not allow_embedded:
        missing = ", ".join(c.fix or f"{c.setting}=..." for c in embedded)
        loaded = ", ".join(f"{c.setting}={c.path}" for c in real)
        names = ", ".join(c.name for c in embedded)
        raise ProvenanceError(f"{names} would be embedded (random weights) next to the checkpoint(s) {loaded}; "
                              f"set {missing} (or allow_embedded=true to mix them on purpose)")
    return Provenance([c.name for c in embedded], {c.name: str(c.path) for c in real}, bool(allow_embedded))


def _user_error_types() -> tuple[type[BaseException], ...]:
    # imported when an error happens, so a command's start-up does not pay for every loader
    from heartcodec_lab.codec.config import ConfigError
    from heartcodec_lab.codec.loading import CheckpointError
    from heartcodec_lab.encoders.official.loading import CheckpointError as EncoderCheckpointError
    from heartcodec_lab.encoders.projection.export import ProjectionCheckpointError
    from heartcodec_lab.mula.loading import MulaLoadError

    return (ProvenanceError, CheckpointError, ConfigError, EncoderCheckpointError, ProjectionCheckpointError,
            MulaLoadError, FileNotFoundError, NotADirectoryError)


def one_line_errors(prog: str, extra: tuple[type[BaseException], ...] = ()) -> Callable:
    """Decorator for a command's task: refusals and checkpoint errors -> ``prog: error: ...`` on stderr, exit 1."""

    def wrap(task: Callable) -> Callable:
        @functools.wraps(task)
        def run(*args, **kwargs):
            try:
                return task(*args, **kwargs)
            except Exception as err:
                if not isinstance(err, _user_error_types() + tuple(extra)):
                    raise
                print(f"{prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
                sys.exit(EXIT_REFUSED)

        return run

    return wrap
