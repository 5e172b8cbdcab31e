"""The card's layout: configs at the top-level ``conf/``, shipped in the wheel as ``heartcodec_lab.conf``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _declared_packages() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return sorted(tomllib.load(f)["tool"]["setuptools"]["packages"])


def _tree_packages() -> list[str]:
    found = ["heartcodec_lab.conf"]
    for init in (ROOT / "heartcodec_lab").rglob("__init__.py"):
        found.append(".".join(init.parent.relative_to(ROOT).parts))
    return sorted(found)


def test_package_list_matches_tree():
    assert _declared_packages() == _tree_packages()


def test_card_layout_top_level_entries():
    for name in ("pyproject.toml", "README.md", "heartcodec_lab", "conf", "train.py", "notebooks", "tests"):
        assert (ROOT / name).exists(), name
    # root modules with these names would shadow the standard library / Hugging Face packages
    assert not (ROOT / "tokenize.py").exists() and not (ROOT / "evaluate.py").exists()
    assert not (ROOT / "heartcodec_lab" / "conf").exists(), "configs belong in the top-level conf/"


def test_installed_package_resolves_configs_to_the_top_level_folder():
    import heartcodec_lab.conf as conf

    assert Path(conf.CONF_DIR) == ROOT / "conf"
    assert conf.CONF_PKG == "pkg://heartcodec_lab.conf"


@pytest.mark.timeout(300)
def test_built_wheel_contains_configs_and_every_package(tmp_path):
    # Build from a copy of the files git knows, so stale build/ or egg-info folders cannot fill in what
    # the package configuration forgets.
    src = tmp_path / "src"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for rel in filter(None, listed.stdout.splitlines()):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(tmp_path),
        str(src),
    ]
    subprocess.run(cmd, check=True, cwd=tmp_path, capture_output=True)
    (wheel,) = tmp_path.glob("heartcodec_lab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    yamls = sorted(p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml"))
    assert yamls and "train.yaml" in yamls
    missing = [y for y in yamls if f"heartcodec_lab/conf/{y}" not in names]
    assert not missing, f"configs missing from the wheel: {missing}"
    for pkg in _tree_packages():
        assert pkg.replace(".", "/") + "/__init__.py" in names, pkg
    assert not any(n.startswith("conf/") for n in names), "conf must ship only as heartcodec_lab/conf"

    # The installed package (the wheel unpacked ahead of the editable install on sys.path) finds its configs
    # with no clone around: a console command composes its config from the wheel's heartcodec_lab.conf.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = "import heartcodec_lab.conf as c; print(c.CONF_DIR)"
    where = subprocess.run(
        [sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True, check=True
    )
    assert Path(where.stdout.strip()) == site / "heartcodec_lab" / "conf"
    job = subprocess.run(
        [sys.executable, "-m", "heartcodec_lab.tokenize", "--cfg", "job"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert job.returncode == 0, job.stderr
    assert "codec:" in job.stdout and "encoder:" in job.stdout
    assets = sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "heartcodec_lab" / "assets").rglob("*") if p.is_file()
    )
    assert assets and all(a in names for a in assets), "shipped weights missing from the wheel"
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "heartcodec_lab" / "listen" / "static").iterdir())
    assert pages and all(p in names for p in pages), "the listening test's pages missing from the wheel"


@pytest.mark.parametrize("module", ["heartcodec_lab.tokenize", "heartcodec_lab.evaluate"])
def test_jobs_run_as_modules_from_any_folder(module, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", module, "--cfg", "job"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "codec:" in out.stdout
