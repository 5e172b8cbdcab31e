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


def test_readme_links_resolve_and_its_commands_exist():
    """Every relative link in README.md names a file (and a heading, when it has an anchor); every
    ``heartcodec-*`` command it shows is installed by [project.scripts]; every docs page is linked."""
    import tomllib

    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)", readme)
    assert links
    for target, anchor in links:
        if "://" in target:
            continue
        path = ROOT / target
        assert path.is_file(), f"README.md links to {target}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(), flags=re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, f"README.md links to {target}#{anchor}: no such heading"
    with open(ROOT / "pyproject.toml", "rb") as f:
        scripts = set(tomllib.load(f)["project"]["scripts"])
    shown = set(re.findall(r"\b(heartcodec-[a-z]+(?:-[a-z]+)*)", readme))
    assert shown and shown <= scripts, f"README.md shows commands that do not exist: {shown - scripts}"
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    linked = {Path(t).name for t, _ in links if t.startswith("docs/")}
    assert pages <= linked, f"docs pages README.md does not link: {sorted(pages - linked)}"
