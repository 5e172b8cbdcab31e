"""MUSHRA listening tests (ITU-R BS.1534-3): prepare a test folder, serve it to listeners, screen and summarise.

Console command ``heartcodec-listen prepare | serve | results`` (:mod:`heartcodec_lab.cli.listen`); from Python:
:func:`prepare_test`, :func:`create_app` (needs the ``listen`` extra: starlette, uvicorn) and :func:`write_results`.
Names are imported on first use, so the web server starts without loading torch or matplotlib.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "Manifest": "manifest",
    "TestFolderError": "manifest",
    "conditions_from_evaluation": "prepare",
    "prepare_test": "prepare",
    "reconstruct_conditions": "prepare",
    "compute_results": "results",
    "listening_section": "results",
    "write_results": "results",
    "create_app": "app",
}
__all__ = [
    "Manifest",
    "TestFolderError",
    "compute_results",
    "conditions_from_evaluation",
    "create_app",
    "listening_section",
    "prepare_test",
    "reconstruct_conditions",
    "write_results",
]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
