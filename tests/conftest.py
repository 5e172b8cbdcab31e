"""Shared test fixtures: where the reference fixtures live, small audio helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("HEARTCODEC_FIXTURES", REPO.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"reference fixtures not found at {FIXTURES} (set HEARTCODEC_FIXTURES)")
    return FIXTURES


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
