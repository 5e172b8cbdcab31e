"""One vocabulary for every command: ``input=`` (file, folder or list file) and ``output=`` (file or folder).

Each command lists its old spellings in ``Command.renamed`` (old key -> new key, or new key plus extra
overrides the old spelling implied, such as an evaluation mode). They keep working for one release:
:func:`rename_deprecated` rewrites them and prints one notice per spelling on stderr.
"""

from __future__ import annotations

import sys
from typing import Mapping, Sequence, Union

#: the release that drops the old spellings
REMOVED_IN = "0.2"

Renamed = Mapping[str, Union[str, Sequence[str]]]


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
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            out.append(arg)
            continue
        prefix, head, rest, value = _split(arg)
        if head not in renamed:
            out.append(arg)
            continue
        target = renamed[head]
        new, *implied = [target] if isinstance(target, str) else list(target)
        if head not in noted:
            noted.add(head)
            also = f" (and {' '.join(implied)})" if implied else ""
            print(f"{prog}: note: '{head}=' is now '{new}='{also}; the old spelling goes in {REMOVED_IN}",
                  file=stream)
        out.append(f"{prefix}{new}{rest}{value}")
        out.extend(o for o in implied if o not in out)
    return out
