"""Typed settings: one dataclass schema per config group, registered in Hydra's ConfigStore."""

from __future__ import annotations

#: primary configs that carry the codec-dependent ``scale`` group (conf/scale/)
SCALED_CONFIGS: frozenset[str] = frozenset()

_REGISTERED = False


def register_schemas() -> None:
    global _REGISTERED
    _REGISTERED = True
