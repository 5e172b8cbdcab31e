"""Hydra configs shipped inside the package, so installed console commands find them."""

from pathlib import Path

CONF_DIR = str(Path(__file__).resolve().parent)
