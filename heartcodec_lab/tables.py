"""Tables, in one place: Markdown for reports and docs, rich for the console.

Rows are lists of already formatted cells (strings, or anything ``str`` turns into one).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub-flavoured Markdown table, one line per row, ending in a newline."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def rich_table(header: Sequence[str] | None, rows: Sequence[Sequence], title: str | None = None) -> Table:
    """A rich table: the first column left-aligned (labels), the others right-aligned (numbers).

    ``header=None`` gives a key/value table without a header line.
    """
    width = len(header) if header is not None else max((len(r) for r in rows), default=0)
    table = Table(title=title, show_header=header is not None)
    for i in range(width):
        table.add_column(str(header[i]) if header is not None else "", justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(c) for c in row))
    return table


def print_table(
    header: Sequence[str] | None,
    rows: Sequence[Sequence],
    title: str | None = None,
    console: Console | None = None,
    width: int | None = None,
) -> None:
    """Print :func:`rich_table` on ``console`` (a new one ``width`` characters wide when not given)."""
    (console or Console(width=width)).print(rich_table(header, rows, title))
