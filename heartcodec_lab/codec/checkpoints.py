"""Where a checkpoint setting points: a local file or folder, or a Hugging Face Hub repo id.

Every ``*.path`` setting (``codec.path``, ``encoder.path``, ``teacher.path``, ``mula.path``, an
evaluated encoder's ``path``) goes through :func:`locate_checkpoint` inside its loader:

* an existing local file or folder always wins (``ckpt/HeartCodec-oss`` next to you is used as is);
* otherwise ``org/name`` is a Hub repo id, with an optional revision and sub-folder:
  ``HeartMuLa/HeartCodec-oss-20260123``, ``org/name@v1.0`` (branch, tag or commit hash),
  ``org/name@<commit>/HeartMuLa-oss-3B`` (a folder inside the repo). It resolves to the repo's
  snapshot folder in huggingface_hub's cache (``snapshot_download``: ``HF_HUB_CACHE``, else
  ``$HF_HOME/hub``); with ``HF_HUB_OFFLINE=1`` only the cache is read, never the network;
* anything else is returned unchanged, so the loader reports the missing local path.

``CheckpointError`` is the one error type of every checkpoint loader (one line, naming the file), and
:func:`check_state` / :func:`load_strict` the one strict comparison of a state dict with a model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

_TRUE = {"1", "true", "yes", "on"}
_LISTED = 8  # problems named in one error line
# org/name[@revision][/sub/folder]; names as the Hub allows them (letters, digits, - _ .)
_HUB_ID = re.compile(
    r"^(?P<org>[A-Za-z0-9][\w.-]*)/(?P<name>[A-Za-z0-9][\w.-]*?)"
    r"(?:@(?P<revision>[\w.-]+))?(?:/(?P<subfolder>[^@]+?))?/?$"
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be found or loaded; the message is one line naming the file or repo."""


#: Reserved prefix of ``codec.path`` values that name a codec built into the package, not a folder
#: (a folder that really is called so is reached as ``./embedded:...``).
EMBEDDED_PREFIX = "embedded:"
#: The built-in codecs: ``codec.path: null`` (or ``embedded:minicodec``) is the shipped miniature.
EMBEDDED_CODECS = {
    "minicodec": "the shipped miniature HeartCodec, trained here on synthetic music",
    "random": "the tiny random-weight codec (checks code paths, makes noise)",
}
DEFAULT_EMBEDDED = "minicodec"
RANDOM_CODEC = EMBEDDED_PREFIX + "random"


def embedded_codec_name(path) -> str | None:
    """Which built-in codec a ``codec.path`` value names: ``"minicodec"`` for null / empty /
    ``embedded:minicodec``, ``"random"`` for ``embedded:random``, None for a checkpoint path.

    An unknown ``embedded:NAME`` raises :class:`CheckpointError` listing the known spellings.
    """
    text = "" if path is None else str(path).strip()
    if text in ("", "null", "None"):
        return DEFAULT_EMBEDDED
    if not text.startswith(EMBEDDED_PREFIX):
        return None
    name = text[len(EMBEDDED_PREFIX) :]
    if name not in EMBEDDED_CODECS:
        known = ", ".join(EMBEDDED_PREFIX + n for n in EMBEDDED_CODECS)
        raise CheckpointError(
            f"codec.path={text}: unknown built-in codec; known: {known} (a folder of that name: write ./{text})"
        )
    return name


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    revision: str | None = None
    subfolder: str | None = None

    def __str__(self) -> str:
        text = self.repo_id + (f"@{self.revision}" if self.revision else "")
        return text + (f"/{self.subfolder}" if self.subfolder else "")


def parse_hub_id(text: str) -> HubRef | None:
    """``org/name[@revision][/sub/folder]`` -> :class:`HubRef`; None for anything that is not one."""
    match = _HUB_ID.match(text)
    if match is None or ".." in text or text.endswith((".", "-")):
        return None
    return HubRef(f"{match['org']}/{match['name']}", match["revision"], match["subfolder"])


def hub_cache_dir() -> Path:
    """huggingface_hub's cache folder, read from the environment now (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` set (now, or when huggingface_hub was imported)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def snapshot_folder(ref: HubRef) -> Path:
    """The cached snapshot of ``ref`` (downloaded first unless offline); CheckpointError when unavailable."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache, offline = hub_cache_dir(), hub_offline()
    where = f"not a local path, and Hugging Face Hub repo {ref.repo_id}" + (f"@{ref.revision}" if ref.revision else "")
    try:
        folder = snapshot_download(ref.repo_id, revision=ref.revision, cache_dir=cache, local_files_only=offline)
    except (LocalEntryNotFoundError, FileNotFoundError):
        how = "offline (HF_HUB_OFFLINE=1)" if offline else "and the Hub could not be reached"
        raise CheckpointError(
            f"{ref}: {where} is not in the cache {cache}, {how}; "
            f"download it once with `hf download {ref.repo_id}` or set HF_HOME"
        ) from None
    except GatedRepoError:
        raise CheckpointError(
            f"{ref}: {where} is gated: accept its terms on the Hub and log in (`hf auth login`)"
        ) from None
    except RevisionNotFoundError:
        raise CheckpointError(f"{ref}: {where} has no revision {ref.revision!r}") from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{ref}: {where} does not exist (or is private: `hf auth login`)") from None
    except Exception as err:  # network and HTTP failures: one line, whatever the library wrote
        message = " ".join(str(err).split())[:300]
        raise CheckpointError(
            f"{ref}: could not fetch Hugging Face Hub repo {ref.repo_id} ({type(err).__name__}: {message})"
        ) from None
    return Path(folder)


def locate_checkpoint(path: str | Path, what: str = "checkpoint") -> Path:
    """A checkpoint setting -> a local path: the local file/folder if it exists, else a Hub repo's snapshot.

    ``what`` names the kind of checkpoint in errors (``"HeartCodec checkpoint"``).
    """
    text = str(path)
    local = Path(text).expanduser()
    if local.exists():
        return local
    ref = parse_hub_id(text) if not text.startswith(("/", ".", "~")) else None
    if ref is None:
        return local
    folder = snapshot_folder(ref)
    if ref.subfolder is None:
        return folder
    target = folder / ref.subfolder
    if not target.exists():
        raise CheckpointError(
            f"{ref}: no {ref.subfolder!r} in Hugging Face Hub repo {ref.repo_id} ({what}; snapshot {folder})"
        )
    return target


def check_state(
    found: Mapping[str, Sequence[int]],
    expected: Mapping[str, Sequence[int]],
    where: str | Path,
    same_shape: Callable[[str, list, list], bool] | None = None,
) -> None:
    """Key names and shapes of a checkpoint against a model's; one CheckpointError line listing what differs.

    ``found`` / ``expected``: key -> shape. ``same_shape(key, got, want)`` may accept a known
    legacy spelling (the codec's ``initted`` flags stored as ``[1]``).
    """
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:_LISTED]}{' ...' if len(missing) > _LISTED else ''}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:_LISTED]}{' ...' if len(unexpected) > _LISTED else ''}")
    for key in sorted(set(found) & set(expected)):
        got, want = list(found[key]), list(expected[key])
        if got != want and not (same_shape and same_shape(key, got, want)):
            problems.append(f"{key} has shape {got}, the model expects {want}")
    if problems:
        more = f" (+{len(problems) - _LISTED} more)" if len(problems) > _LISTED else ""
        raise CheckpointError(f"{where}: " + "; ".join(problems[:_LISTED]) + more)


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], where: str | Path, assign: bool = False) -> None:
    """Checked :func:`check_state`, then ``load_state_dict(strict=True)``: every tensor present, nothing extra."""
    check_state({k: v.shape for k, v in state.items()}, {k: v.shape for k, v in module.state_dict().items()}, where)
    module.load_state_dict(state, strict=True, assign=assign)
