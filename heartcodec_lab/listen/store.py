"""The ratings of a listening test in SQLite (WAL journal, synchronous=FULL).

One row per rating ``(listener, trial, condition, stimulus, score, created)``; a whole trial is written in one
transaction, so a killed server leaves either all of a trial's ratings or none. Listeners are registered
with an id the server draws.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS listeners (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings (
    listener TEXT NOT NULL REFERENCES listeners(id),
    trial TEXT NOT NULL,
    condition TEXT NOT NULL,
    stimulus TEXT NOT NULL,
    score REAL NOT NULL CHECK (score >= 0 AND score <= 100),
    created TEXT NOT NULL,
    PRIMARY KEY (listener, trial, condition)
);
"""
LISTENER_ID = re.compile(r"^[a-f0-9]{12}$")


class DuplicateRating(ValueError):
    """A rating for (listener, trial, condition) is already stored."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class RatingStore:
    """Thread-safe access to ``ratings.sqlite`` (one connection, one lock: the server's writes are tiny)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_listener(self, name: str = "") -> str:
        with self._lock:
            while True:
                listener = secrets.token_hex(6)
                try:
                    self._db.execute(
                        "INSERT INTO listeners (id, name, created) VALUES (?, ?, ?)", (listener, name, _now())
                    )
                    return listener
                except sqlite3.IntegrityError:  # drawn twice: draw again
                    continue

    def has_listener(self, listener: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM listeners WHERE id = ?", (listener,)).fetchone() is not None

    def add_ratings(self, listener: str, trial: str, ratings: list[tuple[str, str, float]]) -> None:
        """Store ``[(condition, stimulus id, score), ...]`` of one trial atomically; any duplicate refuses all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for condition, _, _ in ratings:
                    row = self._db.execute(
                        "SELECT 1 FROM ratings WHERE listener = ? AND trial = ? AND condition = ?",
                        (listener, trial, condition),
                    ).fetchone()
                    if row is not None:
                        raise DuplicateRating(f"trial {trial}: this listener already rated that condition")
                now = _now()
                self._db.executemany(
                    "INSERT INTO ratings (listener, trial, condition, stimulus, score, created) VALUES (?, ?, ?, ?, ?, ?)",
                    [(listener, trial, c, s, float(v), now) for c, s, v in ratings],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def rated(self, listener: str) -> dict[str, set[str]]:
        """``{trial: {condition, ...}}`` this listener has rated."""
        with self._lock:
            rows = self._db.execute("SELECT trial, condition FROM ratings WHERE listener = ?", (listener,)).fetchall()
        out: dict[str, set[str]] = {}
        for trial, condition in rows:
            out.setdefault(trial, set()).add(condition)
        return out

    def all_ratings(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute(
                "SELECT r.listener, l.name, r.trial, r.condition, r.stimulus, r.score, r.created FROM ratings r "
                "JOIN listeners l ON l.id = r.listener ORDER BY r.listener, r.trial, r.condition"
            ).fetchall()
        keys = ("listener", "name", "trial", "condition", "stimulus", "score", "created")
        return [dict(zip(keys, row)) for row in rows]

    def listeners(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT id, name, created FROM listeners ORDER BY created").fetchall()
        return [{"listener": i, "name": n, "created": c} for i, n, c in rows]


def read_ratings(path: str | Path) -> tuple[list[dict], list[dict]]:
    """(ratings, listeners) of a ratings database, opened read-only (a running server may hold it)."""
    path = Path(path)
    if not path.is_file():
        return [], []
    store = RatingStore.__new__(RatingStore)
    store.path, store._lock = path, threading.Lock()
    store._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    try:
        return store.all_ratings(), store.listeners()
    finally:
        store._db.close()
