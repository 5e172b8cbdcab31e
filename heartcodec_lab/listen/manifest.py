"""``manifest.json`` of a listening test: the trials, their stimuli (files with content hashes) and the
per-listener random order.

Layout of a test folder::

    manifest.json      format_version, test_id, title, settings, sources, conditions, trials, skipped
    stimuli/<trial>/<condition>.wav   16-bit 48 kHz stereo, loudness-matched excerpts
    ratings.sqlite     the ratings (written by ``heartcodec-listen serve``)
    results/           written by ``heartcodec-listen results``

Each stimulus has an opaque random ``id``: the page, the API and the audio URLs use only these ids, so
neither the file system nor the condition behind a sound is visible to the listener.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
HIDDEN_REFERENCE = "hidden_reference"


class TestFolderError(ValueError):
    """A listening-test folder that cannot be used (missing, incomplete or changed since it was prepared)."""

    __test__ = False  # not a pytest test class


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Stimulus:
    id: str
    trial: str
    condition: str  # condition name; "reference" for the labelled (open) reference
    path: Path


class Manifest:
    """A prepared test folder. ``trials`` keeps the manifest's order; :meth:`order` gives a listener's."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        path = self.folder / MANIFEST
        if not path.is_file():
            raise TestFolderError(
                f"{self.folder}: not a listening test (no {MANIFEST}); make one with `heartcodec-listen prepare`"
            )
        try:
            self.data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise TestFolderError(f"{path}: not valid JSON ({err})") from None
        if self.data.get("format_version") != FORMAT_VERSION:
            raise TestFolderError(
                f"{path}: format_version {self.data.get('format_version')!r}, this toolkit reads {FORMAT_VERSION}"
            )
        self.test_id: str = self.data["test_id"]
        self.title: str = self.data.get("title") or "Listening test"
        self.conditions: list[str] = list(self.data["conditions"])
        self.trials: list[dict] = list(self.data["trials"])
        self.trial_by_id = {t["id"]: t for t in self.trials}
        self.stimuli: dict[str, Stimulus] = {}
        for trial in self.trials:
            entries = [("reference", trial["reference"])] + list(trial["stimuli"].items())
            for condition, entry in entries:
                self.stimuli[entry["id"]] = Stimulus(entry["id"], trial["id"], condition, self.folder / entry["file"])

    def verify(self) -> None:
        """Check every stimulus file against its content hash (a changed or missing file is refused)."""
        for trial in self.trials:
            for condition, entry in trial["stimuli"].items():
                path = self.folder / entry["file"]
                if not path.is_file():
                    raise TestFolderError(f"{path}: stimulus file missing (trial {trial['id']}, {condition})")
                if sha256_file(path) != entry["sha256"]:
                    raise TestFolderError(
                        f"{path}: content changed since the test was prepared "
                        "(sha256 differs from the manifest); prepare the test again"
                    )

    def condition_of(self, trial_id: str, stimulus_id: str) -> str | None:
        """The condition name behind ``stimulus_id`` in ``trial_id`` (None: not one of the rated conditions)."""
        stim = self.stimuli.get(stimulus_id)
        if stim is None or stim.trial != trial_id or stim.condition == "reference":
            return None
        return stim.condition

    def order(self, listener: str) -> list[dict]:
        """This listener's trials, each ``{"id", "item", "reference", "conditions"}`` with the rated stimulus ids
        shuffled; trial and condition order are drawn from (test id, listener), so a reload gives the same order."""
        rng = random.Random(f"{self.test_id}:{listener}")
        trials = list(self.trials)
        rng.shuffle(trials)
        out = []
        for trial in trials:
            ids = [entry["id"] for entry in trial["stimuli"].values()]
            rng.shuffle(ids)
            out.append({"id": trial["id"], "reference": trial["reference"]["id"], "conditions": ids})
        return out
