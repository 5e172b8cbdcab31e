"""``backend=ray`` on a local two-worker Ray instance (2 CPUs, 200 MB object store): byte-identical to the
local backend with bad files in the corpus, after an encoder actor is killed mid-job (Ray restarts it),
and when a killed actor stops the job (a rerun finishes it without re-encoding what was done)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import test_tokenize_stream
import test_tokenize_support
from test_tokenize_stream import ShortcutEncoder
from test_tokenize_support import job_config, make_bad_corpus, make_music_folder, read_jsonl, snapshot

from heartcodec_lab.tokenize.finalize import finalize
from heartcodec_lab.tokenize.layout import Ledger
from heartcodec_lab.tokenize.runner import run

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

#: two encoder actors and the decoding tasks share the instance's 2 CPUs
RAY = {"ray.num_encoders": 2, "ray.cpus_per_encoder": 0.5, "ray.cpus_per_decode": 0.5}


class KillingEncoder(ShortcutEncoder):
    """Kills the actor process it runs in at the ``at``-th encoder call counted over every actor, once."""

    def __init__(self, workdir: Path, at: int):
        super().__init__()
        self.counter, self.marker, self.at = str(workdir / "calls"), str(workdir / "killed"), at

    def quantize(self, features):
        with open(self.counter, "a") as f:
            f.write("x")
        if os.path.getsize(self.counter) >= self.at and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return super().quantize(features)


@pytest.fixture(scope="module")
def cluster():
    for module in (test_tokenize_support, test_tokenize_stream, __import__(__name__)):
        ray.cloudpickle.register_pickle_by_value(module)  # the workers cannot import the tests folder
    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    make_music_folder(root / "in")
    make_bad_corpus(root / "in" / "bad")
    assert run(job_config(root / "in", root / "local"), encoder=ShortcutEncoder()) == 0
    return root


def test_two_workers_equal_local_backend_after_a_worker_is_killed(cluster, corpus, tmp_path):
    out = tmp_path / "ray"
    encoder = KillingEncoder(tmp_path, at=4)
    assert run(job_config(corpus / "in", out, backend="ray", **RAY), encoder=encoder) == 0
    assert (tmp_path / "killed").exists()  # an actor really died mid-job; Ray restarted it and retried
    assert snapshot(out) == snapshot(corpus / "local")
    assert len(read_jsonl(out / "failures.jsonl")) == 8


def test_job_stopped_by_a_dead_worker_resumes_without_re_encoding(cluster, corpus, tmp_path):
    from heartcodec_lab.tokenize.ray_backend import run_ray

    out = tmp_path / "ray"
    encoder = KillingEncoder(tmp_path, at=7)
    with pytest.raises(ray.exceptions.RayError):  # no restarts: the actor's death stops the job
        run(job_config(corpus / "in", out, backend="ray", **RAY, **{"ray.max_restarts": 0}), encoder=encoder)
    assert (tmp_path / "killed").exists()
    ledger = out / ".parts" / "shard-00000-of-00001" / "ledger.jsonl"
    before = {e["file_name"]: e["seq"] for e in Ledger.read(ledger) if e["kind"] == "ok"}
    assert before, "no file finished before the kill: move the kill later"
    summary = run_ray(job_config(corpus / "in", out, backend="ray", **RAY), encoder=ShortcutEncoder())
    assert summary.skipped == len(before) and summary.ok == 6 - len(before) and summary.failed == 8
    after = {e["file_name"]: e["seq"] for e in Ledger.read(ledger) if e["kind"] == "ok"}
    assert {name: after[name] for name in before} == before  # the same lines: those files were not encoded again
    finalize(out)
    assert snapshot(out) == snapshot(corpus / "local")
