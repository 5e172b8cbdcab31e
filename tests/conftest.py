"""Shared test fixtures: where the reference fixtures live, small audio helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# The suite never reaches the network: Hub repo ids resolve from a cache folder or fail clearly.
os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("HEARTCODEC_FIXTURES", REPO.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"reference fixtures not found at {FIXTURES} (set HEARTCODEC_FIXTURES)")
    return FIXTURES


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_worker():
    # The suite runs as two pytest-xdist workers on 2 cores; a second intra-op thread per worker
    # only oversubscribes the cores (tiny models slow down many-fold under OpenMP contention).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
