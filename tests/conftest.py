"""Shared test fixtures: the reference fixtures (skipped with a reason when absent), composing configs, threads."""

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
    """The tiny checkpoint copies in ``../shared/fixtures``; tests that need them skip when the folder is absent."""
    if not FIXTURES.is_dir():
        pytest.skip(
            f"reference fixtures not found at {FIXTURES} (a checkout without ../shared; "
            "set HEARTCODEC_FIXTURES to their folder)"
        )
    return FIXTURES


def compose_config(name: str, *overrides: str, hydra: bool = False):
    """The config ``conf/<name>.yaml`` with ``overrides``, as its command composes it (``+experiment=`` as the
    experiment slot, the ``scale`` chosen from ``codec.path``, the schemas checked; ``hydra``: keep that node)."""
    from heartcodec_lab.training.run import compose_config as compose_packaged

    return compose_packaged([str(o) for o in overrides], config_name=name, return_hydra_config=hydra)


@pytest.fixture(scope="session")
def compose():
    """``compose(name, *overrides, hydra=False)`` -> the composed DictConfig of one command's config."""
    return compose_config


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
