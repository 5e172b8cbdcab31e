"""The layers hold: ``cli/`` sits over the library, only ``cli/`` and ``training/`` import Hydra
(directly, or through ``heartcodec_lab.conf``, which registers the typed schemas with Hydra), and only
``training/`` imports Lightning (besides the tokenizer's Fabric launcher, ``tokenize/runner.py``).

The import graph is read with ``ast`` from the source (every ``import``, top-level or inside a
function), so a lazy import cannot hide a violation. ``__main__.py`` files are entry points
(``python -m heartcodec_lab.tokenize``) that hand over to their command, so they may import ``cli``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "heartcodec_lab"
HYDRA_USERS = ("cli", "training")  # the only sub-packages that may import hydra
# Lightning: the training package, and the tokenizer's multi-device launcher (Lightning Fabric)
LIGHTNING_USERS = ("training",)
LIGHTNING_MODULES = ("tokenize/runner.py",)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in ``path``; ``from a import b`` also yields ``a.b``."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def violations(root: Path) -> list[str]:
    """Every import that breaks the layering rules in the package at ``root`` (``path:line: what``)."""
    top = root.name
    problems: dict[tuple[str, str], str] = {}  # (place, rule) -> message: one per import statement and rule
    for path in sorted(root.rglob("*.py")):
        sub = path.relative_to(root).parts[0] if len(path.relative_to(root).parts) > 1 else ""
        for line, name in imported_names(path, root):
            where = f"{path.relative_to(root.parent)}:{line}"
            is_cli = name == f"{top}.cli" or name.startswith(f"{top}.cli.")
            if is_cli and sub != "cli" and path.name != "__main__.py":
                problems.setdefault((where, "cli"), f"{where}: imports {name} (packages below cli/ never import it)")
            uses_hydra = name.split(".")[0] == "hydra" or name == f"{top}.conf" or name.startswith(f"{top}.conf.")
            if uses_hydra and sub not in HYDRA_USERS:
                problems.setdefault(
                    (where, "hydra"), f"{where}: imports {name} (only {', '.join(HYDRA_USERS)} import Hydra)"
                )
            rel = path.relative_to(root).as_posix()
            if name.split(".")[0] in ("lightning", "pytorch_lightning") and not (
                sub in LIGHTNING_USERS or rel in LIGHTNING_MODULES
            ):
                problems.setdefault((where, "lightning"), f"{where}: imports {name} (only training/ imports Lightning)")
    return sorted(problems.values())


def test_the_package_keeps_its_layers():
    assert violations(PACKAGE) == []


def test_every_console_command_lives_in_cli():
    import tomllib

    with open(PACKAGE.parent / "pyproject.toml", "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts and all(target.startswith("heartcodec_lab.cli.") for target in scripts.values()), scripts


def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_checker_finds_planted_violations(tmp_path):
    pkg = _plant(
        tmp_path / "heartcodec_lab",
        {
            "__init__.py": "",
            "cli/__init__.py": "",
            "cli/runner.py": "import hydra\nfrom heartcodec_lab.codec import x\n",  # allowed
            "training/run.py": "def f():\n    from hydra.utils import instantiate\n",  # allowed
            "tokenize/__main__.py": "from heartcodec_lab.cli.tokenize import main\n",  # allowed: an entry point
            "codec/__init__.py": "",
            "codec/model.py": "def load():\n    from ..cli import runner\n",  # relative, lazy: still a violation
            "evaluate/report.py": "import hydra.utils\nfrom heartcodec_lab import cli\n",
            "study/run.py": "from heartcodec_lab.conf import CONF_PKG\n",  # the config package registers with Hydra
            "tokenize/runner.py": "def launch():\n    from lightning.fabric import Fabric\n",  # allowed: the launcher
            "evaluate/plots.py": "import lightning.pytorch as pl\n",
        },
    )
    found = violations(pkg)
    assert len(found) == 5, found
    assert any("evaluate/plots.py:1: imports lightning.pytorch" in f for f in found)
    assert any("study/run.py:1: imports heartcodec_lab.conf" in f for f in found)
    assert any(f.startswith("heartcodec_lab/codec/model.py:2: imports heartcodec_lab.cli") for f in found)
    assert any("evaluate/report.py:1: imports hydra.utils" in f for f in found)
    assert any("evaluate/report.py:2: imports heartcodec_lab.cli" in f for f in found)
