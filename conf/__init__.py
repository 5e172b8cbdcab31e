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
