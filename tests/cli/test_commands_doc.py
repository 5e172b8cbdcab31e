"""docs/commands.md agrees with the code: its table names every console command, its module and its config."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _table_rows() -> dict[str, list[str]]:
    """First-column command names -> the row's cells, for every row of the commands table."""
    rows = {}
    for line in (ROOT / "docs" / "commands.md").read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]  # "\|" is a literal bar
        if line.startswith("| `heartcodec-"):
            for name in re.findall(r"`(heartcodec-[a-z-]+)[` ]", cells[0]):
                rows[name] = cells
    return rows


def test_every_console_command_has_a_row_with_its_module_and_an_existing_config():
    import tomllib  # Python 3.11+ (the tests run on 3.11)

    with open(ROOT / "pyproject.toml", "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    rows = _table_rows()
    assert sorted(rows) == sorted(scripts), "docs/commands.md's table and [project.scripts] differ"
    for name, target in scripts.items():
        module = target.split(":")[0].removeprefix("heartcodec_lab.").replace(".", "/") + ".py"
        cells = rows[name]
        assert f"`{module}`" == cells[1], f"{name}: the table says {cells[1]}, pyproject says {module}"
        config = re.match(r"`([a-z_]+\.yaml)`", cells[2])
        assert config and (ROOT / "conf" / config.group(1)).is_file(), f"{name}: no conf/{cells[2]}"
