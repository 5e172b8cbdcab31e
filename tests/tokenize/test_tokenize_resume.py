"""Interruption: SIGKILL at the dangerous moments, run again, and the dataset equals an uninterrupted run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from test_tokenize_support import StandInEncoder, job_config, read_jsonl, snapshot, tone, write

from heartcodec_lab.tokenize.runner import run

TESTS = Path(__file__).resolve().parent

# One interpreter imports everything once, then forks one child per kill point; each child runs the job
# and SIGKILLs itself at that point (the parent checks it really died by SIGKILL).
DRIVER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_tokenize_support import StandInEncoder, job_config
    from heartcodec_lab.tokenize import finalize, job, layout, runner

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def child(mode, n):
        count = [0]
        def tick():
            count[0] += 1
            return count[0] == n
        if mode == "before_rename":  # token written to its temporary name, not renamed yet
            real = os.replace
            def replace(src, dst):
                if str(dst).endswith(".npy") and tick():
                    die()
                real(src, dst)
            layout.os.replace = replace
        elif mode == "after_rename":  # token file complete, its ledger line not written yet
            real_save = job.save_tokens
            def save(path, arr, tag=""):
                real_save(path, arr, tag)
                if tick():
                    die()
            job.save_tokens = save
        elif mode == "torn_line":  # half a ledger line on disk
            real_append = layout.Ledger.append
            def append(self, entry):
                if tick():
                    if self._fh is None:
                        self._fh = open(self.path, "a", encoding="utf-8")
                    self._fh.write('{{"kind": "ok", "file_na')
                    self._fh.flush()
                    die()
                real_append(self, entry)
            layout.Ledger.append = append
        elif mode == "in_finalize":  # metadata.jsonl written, failures.jsonl not yet
            real_write = finalize.write_jsonl
            def write_jsonl(path, rows, tag=""):
                real_write(path, rows, tag)
                if tick():
                    die()
            finalize.write_jsonl = write_jsonl
        runner.run(job_config(sys.argv[1], sys.argv[2]), encoder=StandInEncoder())
        os._exit(0)

    for spec in sys.argv[3:]:
        mode, n = spec.split(":")
        pid = os.fork()
        if pid == 0:
            child(mode, int(n))
        _, status = os.waitpid(pid, 0)
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            print("child", spec, "was not killed", status)
            sys.exit(3)
    print("all killed")
""")


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path):
    src = tmp_path / "in"
    for i in range(4):
        write(src / f"s{i}.wav", tone(0.5 + 0.7 * i, 44100, 2, seed=i), 44100)  # the last one has two chunks
    (src / "s1.txt").write_text("rock")
    (src / "bad.mp3").write_text("not audio")
    write(src / "short.wav", tone(0.05, 48000, 2), 48000)
    reference = tmp_path / "reference"
    assert run(job_config(src, reference), encoder=StandInEncoder()) == 0

    out = tmp_path / "out"
    kills = ["before_rename:2", "after_rename:2", "torn_line:2", "after_rename:1", "in_finalize:1"]
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER.format(tests=str(TESTS)), str(src), str(out), *kills],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0 and "all killed" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    # the last child died inside finalize: metadata.jsonl written, failures.jsonl not
    assert (out / "metadata.jsonl").is_file() and not (out / "failures.jsonl").exists()

    assert run(job_config(src, out), encoder=StandInEncoder()) == 0
    assert snapshot(out) == snapshot(reference)
    assert not list((out / "tokens").rglob("*.tmp-*"))
    names = [r["file_name"] for r in read_jsonl(out / "metadata.jsonl")]
    assert len(names) == len(set(names)) == 4
    assert len(read_jsonl(out / "failures.jsonl")) == 2
