"""Hydra configs: the top-level ``conf/`` of a clone, shipped in the wheel as ``heartcodec_lab.conf``.

Console commands find them through ``CONF_PKG`` (installed or editable alike); ``CONF_DIR`` is the
folder on disk, for tests and tools that compose a config directly.
"""

from pathlib import Path

CONF_PKG = "pkg://heartcodec_lab.conf"
CONF_DIR = str(Path(__file__).resolve().parent)


def group_options(group: str) -> list[str]:
    """The option names of a config group, from its folder (``group_options("experiment")`` -> ``["conv1d", ...]``)."""
    folder = Path(CONF_DIR) / group
    if not folder.is_dir():
        raise ValueError(f"no config group {group!r} in {CONF_DIR}")
    return sorted(p.stem for p in folder.glob("*.yaml"))


def scale_for(codec_path) -> str:
    """The ``scale`` group option for a codec: ``mini`` for an embedded one (null / ``embedded:NAME``), else ``full``."""
    text = "" if codec_path is None else str(codec_path).strip().strip("'\"")
    return "mini" if text in ("", "null", "None", "~") or text.startswith("embedded:") else "full"


#: primary configs with the ``scale`` group (conf/scale/), chosen from ``codec.path`` unless set
SCALED_CONFIGS = frozenset({"train"})


def with_scale(config: str, overrides: list[str]) -> list[str]:
    """``overrides`` plus ``scale=mini|full`` (from the last ``codec.path=``) when ``config`` has the scale
    group and the overrides choose none."""
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    if config not in SCALED_CONFIGS or "scale" in keys:
        return list(overrides)
    paths = [o.split("=", 1)[1] for o, k in zip(overrides, keys) if k == "codec.path" and "=" in o]
    return [f"scale={scale_for(paths[-1] if paths else None)}", *overrides]  # first: flags may follow the overrides


def register_schemas() -> None:
    """Put the typed schemas of :mod:`heartcodec_lab.conf.schemas` in Hydra's ConfigStore (idempotent).

    Called when this package is imported, which Hydra does before composing ``pkg://heartcodec_lab.conf``:
    a command's YAML names its schema first (``- tokenize_schema``), a group option its own
    (``- conv1d_schema`` in ``projection/conv1d.yaml``).
    """
    from hydra.core.config_store import ConfigStore

    from heartcodec_lab.conf import schemas

    store = ConfigStore.instance()
    for name, node in schemas.COMMANDS.items():
        store.store(name=f"{name}_schema", node=node)
    for (group, name), node in schemas.OPTIONS.items():
        store.store(group=group, name=f"{name}_schema", node=node)


register_schemas()
