"""One vocabulary for every command: ``input=`` (file, folder or list file) and ``output=`` (file or folder).

Each command lists its old spellings in ``Command.renamed`` (old key -> new key, or new key plus extra
overrides the old spelling implied, such as an evaluation mode). They keep working for one release:
:func:`rename_deprecated` rewrites them and prints one notice per spelling on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

#: the release that drops the old spellings
REMOVED_IN = "0.2"

Renamed = Mapping[str, str | Sequence[str]]


def _split(arg: str) -> tuple[str, str, str, str]:
    """``++a.b=v`` -> (``++``, ``a``, ``.b``, ``=v``); the first dotted part is the one that can be renamed."""
    key, eq, value = arg.partition("=")
    stripped = key.lstrip("+~")
    prefix = key[: len(key) - len(stripped)]
    head, dot, rest = stripped.partition(".")
    return prefix, head, dot + rest, eq + value


def rename_deprecated(prog: str, args: list[str], renamed: Renamed, stream=None) -> list[str]:
    """``args`` with old spellings replaced; one ``prog: note: ...`` line per old spelling used."""
    stream = stream or sys.stderr
    out: list[str] = []
    noted: set[str] = set()
    given = {_split(a)[1] + _split(a)[2] for a in args if "=" in a and not a.startswith("-")}
    implied: dict[str, tuple[int, str]] = {}  # key -> (rank of the old spelling in `renamed`, override)
    order = list(renamed)
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            out.append(arg)
            continue
        prefix, head, rest, value = _split(arg)
        if head not in renamed:
            out.append(arg)
            continue
        target = renamed[head]
        new, *implied_here = [target] if isinstance(target, str) else list(target)
        if head not in noted:
            noted.add(head)
            also = f" (and {' '.join(implied_here)})" if implied_here else ""
            print(f"{prog}: note: '{head}=' is now '{new}='{also}; the old spelling goes in {REMOVED_IN}", file=stream)
        out.append(f"{prefix}{new}{rest}{value}")
        for extra in implied_here:
            key = extra.split("=", 1)[0]
            rank = order.index(head)
            if key not in given and rank >= implied.get(key, (-1, ""))[0]:
                implied[key] = (rank, extra)  # a later entry of `renamed` wins (estimate_dir's mode=pairs)
    return out + [extra for _, extra in implied.values()]
