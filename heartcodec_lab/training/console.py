"""What a training run prints: Lightning's messages once, no vendor tips, no library deprecation noise, and a
closing summary that says where the outputs went (:func:`run_summary`).

Lightning gives its top logger (``lightning``) its own handler *and* lets it propagate to the root
logger, which Hydra configures too: every message came out twice. :func:`configure_console` leaves
one path (the root's handlers when there are any, else Lightning's own) and drops the
advertising tips. Library ``DeprecationWarning`` / ``FutureWarning`` (a Lightning release calling
a deprecated torch API, ...) are hidden unless the user asks for warnings (``python -W ...`` or
``PYTHONWARNINGS``); our own stay visible.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
# the loggers Lightning's rank_zero_info writes through
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
NOT_OURS = r"(?!heartcodec_lab)"  # a module name that does not start with heartcodec_lab


class DropVendorTips(logging.Filter):
    """Drops Lightning's product tips ("💡 Tip: ... litlogger ..."): not about this run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).lstrip().startswith("💡")


_TIPS = DropVendorTips()


def route_lightning_logs() -> None:
    """One handler prints each Lightning message: the root's (Hydra's console and log file) when set, else Lightning's."""
    root_has_handlers = bool(logging.getLogger().handlers)
    top = logging.getLogger("lightning")
    for name in LIGHTNING_LOGGERS[1:]:
        child = logging.getLogger(name)
        for handler in list(child.handlers):  # added when the root had none at import time
            child.removeHandler(handler)
        child.propagate = True  # up to `lightning`
    if root_has_handlers:
        for handler in list(top.handlers):
            top.removeHandler(handler)
        top.propagate = True
    else:
        if not top.handlers:
            top.addHandler(logging.StreamHandler())
        top.propagate = False
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if _TIPS not in logger.filters:
            logger.addFilter(_TIPS)


def quiet_library_warnings() -> None:
    """Hide other libraries' deprecation notices (kept when warnings were requested with -W / PYTHONWARNINGS)."""
    if sys.warnoptions:
        return
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=NOT_OURS)


def configure_console() -> None:
    route_lightning_logs()
    quiet_library_warnings()


def listening_files(out_dir: Path) -> list[Path]:
    """The newest reconstruction preview's wavs (``reconstructions/step<N>/clip<j>_{input,recon}.wav``), or []."""
    steps = sorted(p for p in (Path(out_dir) / "reconstructions").glob("step*") if p.is_dir())
    return sorted(steps[-1].glob("*.wav")) if steps else []


def run_summary(summary: dict, out_dir: Path) -> str:
    """The lines a run ends with: where its outputs went (folder, exported projection, listening files)."""
    out_dir = Path(out_dir)
    lines = [f"Done: {summary.get('global_step', 0)} steps; outputs in {out_dir}/"]
    export = summary.get("projection_export")
    if export:
        lines.append(f"  projection  {export}/  (use it: encoder=projection encoder.path={export})")
    else:
        lines.append("  projection  not exported (export_projection=false)")
    listen = [Path(p) for p in summary.get("listening_files", [])]
    if listen:
        lines.append(f"  listen      {listen[0].parent}/  {', '.join(p.name for p in listen)}  (input vs detokenize)")
    else:
        lines.append("  listen      none written (callbacks.reconstruction_preview.num_clips=0 or no validation)")
    lines.append(f"  summary     {out_dir / 'summary.json'}  (metrics, provenance, checkpoint)")
    return "\n".join(lines)
