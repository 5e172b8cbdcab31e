"""The notebooks run top to bottom on the embedded default models (executed with nbclient)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, tmp_path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    return notebook


def outputs(notebook, mime: str) -> list:
    return [
        o["data"][mime]
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if mime in o.get("data", {})
    ]


@pytest.mark.slow
def test_listening_test_notebook(tmp_path):
    notebook = execute("listening_test.ipynb", tmp_path)
    html = "".join(outputs(notebook, "text/html"))
    assert html.count("<audio") == 2 * 3  # two clips x (original + two reconstructions)
    assert len(outputs(notebook, "image/png")) == 2  # one spectrogram figure per clip
    markdown = "".join(outputs(notebook, "text/markdown"))
    assert "si_sdr_db" in markdown
    assert markdown.count("| transcript of | text | wer vs original |") == 2  # transcripts next to each clip
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "heartcodec-listen serve test=" in printed  # the preview ends by preparing a real listening test
    folder = next(line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("test folder: "))
    assert (Path(folder) / "manifest.json").is_file()


@pytest.mark.slow
def test_codebook_usage_notebook(tmp_path):
    notebook = execute("codebook_usage.ipynb", tmp_path)
    assert len(outputs(notebook, "image/png")) == 2  # usage histogram and rank-frequency curves
    tables = "".join(outputs(notebook, "text/markdown"))
    assert "| q7 |" in tables and "entropy_bits" in tables
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "top-5 codes hold" in printed and "## Codebook usage" in printed
