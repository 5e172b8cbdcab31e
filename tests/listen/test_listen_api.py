"""The listening test's JSON API and pages (Starlette TestClient): what it stores, what it refuses, access
tokens, audio by manifest id only, resume after a reload or a restart."""

from __future__ import annotations

import sqlite3

import pytest

pytest.importorskip("starlette", reason="needs the listen extra (starlette, httpx)")
from listen_helpers import make_test
from starlette.testclient import TestClient

from heartcodec_lab.listen import Manifest
from heartcodec_lab.listen.app import create_app
from heartcodec_lab.listen.manifest import TestFolderError


@pytest.fixture(scope="module")
def test_dir(tmp_path_factory):
    return make_test(tmp_path_factory.mktemp("listen"), n=2, seconds=1.0)


@pytest.fixture
def fresh(test_dir, tmp_path):
    """A copy of the module's test folder with an empty ratings database."""
    import shutil

    shutil.copytree(test_dir, tmp_path / "test", ignore=shutil.ignore_patterns("ratings.sqlite*"))
    return tmp_path / "test"


def _rows(test) -> int:
    with sqlite3.connect(test / "ratings.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]


def _start(client) -> tuple[str, list[dict]]:
    listener = client.post("/api/listeners", json={"name": "ann"}).json()["listener"]
    return listener, client.get("/api/trials", params={"listener": listener}).json()


def test_trials_give_each_listener_a_stable_order_with_every_condition(fresh):
    client = TestClient(create_app(fresh))
    manifest = Manifest(fresh)
    first, trials = _start(client)
    assert client.get("/api/trials", params={"listener": first}).json() == trials  # a reload: same order
    assert sorted(t["id"] for t in trials) == ["t001", "t002"]
    for trial in trials:
        names = sorted(manifest.condition_of(trial["id"], s) for s in trial["conditions"])
        assert names == sorted(manifest.conditions)  # hidden reference and both anchors included
        assert manifest.stimuli[trial["reference"]].condition == "reference"
    orders = {tuple(tuple(t["conditions"]) for t in _start(client)[1]) for _ in range(6)}
    assert len(orders) > 1, "condition order must be drawn per listener"


def test_ratings_are_stored_and_a_restarted_server_resumes(fresh):
    client = TestClient(create_app(fresh))
    listener, trials = _start(client)
    first = trials[0]
    response = client.post(
        "/api/rating",
        json={"listener": listener, "trial": first["id"], "condition": first["conditions"][0], "score": 42.5},
    )
    assert response.status_code == 201
    rest = {s: 70 for s in first["conditions"][1:]}
    assert (
        client.post("/api/trial", json={"listener": listener, "trial": first["id"], "ratings": rest}).status_code == 201
    )
    assert _rows(fresh) == len(first["conditions"])
    # a new app on the same folder (a restarted server): the first trial is done, the page goes on at the second
    again = TestClient(create_app(fresh))
    state = again.get("/api/trials", params={"listener": listener}).json()
    assert [t["done"] for t in state] == [True, False] and [t["position"] for t in state] == [1, 2]
    redirect = again.get(f"/listen/{listener}", follow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["location"] == f"/listen/{listener}/2"
    page = again.get(f"/listen/{listener}/2")
    assert page.status_code == 200 and 'data-position="2"' in page.text and "Trial 2 of 2" in page.text
    second = state[1]
    again.post(
        "/api/trial",
        json={"listener": listener, "trial": second["id"], "ratings": {s: 10 for s in second["conditions"]}},
    )
    assert again.get(f"/listen/{listener}", follow_redirects=False).headers["location"] == f"/thanks/{listener}"


def test_bad_requests_are_refused_with_a_message_and_change_nothing(fresh, test_dir):
    client = TestClient(create_app(fresh))
    listener, trials = _start(client)
    trial, other = trials
    good = {"listener": listener, "trial": trial["id"], "condition": trial["conditions"][0], "score": 50}
    assert client.post("/api/rating", json=good).status_code == 201
    before = _rows(fresh)
    cases = [
        (dict(good, condition=trial["conditions"][1], score=101), 422, "outside 0-100"),
        (dict(good, condition=trial["conditions"][1], score=-0.5), 422, "outside 0-100"),
        (dict(good, condition=trial["conditions"][1], score="80"), 400, "wrong type"),
        (dict(good, condition=trial["conditions"][1], score=True), 400, "wrong type"),
        (dict(good, trial="t999"), 404, "unknown trial"),
        (dict(good, trial="../manifest.json"), 404, "unknown trial"),
        (dict(good, condition=other["conditions"][0]), 404, "unknown condition"),  # a stimulus of another trial
        (dict(good, condition=trial["reference"]), 404, "unknown condition"),  # the labelled reference
        (dict(good, condition="hidden_reference"), 404, "unknown condition"),  # names are not ids
        (dict(good, listener="0123456789ab"), 404, "unknown listener"),
        (good, 409, "duplicate"),
        (dict(good, extra=1), 400, "unexpected field"),
        ({k: v for k, v in good.items() if k != "score"}, 400, "missing field 'score'"),
    ]
    for body, status, message in cases:
        response = client.post("/api/rating", json=body)
        assert response.status_code == status, (body, response.text)
        assert message in response.json()["error"], (body, response.text)
    for raw, message in [(b"{not json", "malformed JSON"), (b"[1, 2]", "JSON object"), (b"\xff\xfe", "malformed JSON")]:
        response = client.post("/api/rating", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400 and message in response.json()["error"]
    assert client.post("/api/rating", content=b" " * 70000).status_code == 413
    # a whole trial is all or nothing: one bad score, a missing condition or a duplicate refuses every rating
    full = {s: 60 for s in other["conditions"]}
    for ratings, status in [
        ({**full, other["conditions"][2]: 150}, 422),
        (dict(list(full.items())[:-1]), 422),
        ({**full, trial["conditions"][0]: 10}, 404),
    ]:
        response = client.post("/api/trial", json={"listener": listener, "trial": other["id"], "ratings": ratings})
        assert response.status_code == status and response.json()["error"]
    rest = {s: 50 for s in trial["conditions"][1:]}
    for ratings, status in [
        ({**rest, trial["conditions"][0]: 50}, 409),  # the first is already stored
        (dict(list(rest.items())[:-1]), 422),
    ]:  # one condition left unrated
        response = client.post("/api/trial", json={"listener": listener, "trial": trial["id"], "ratings": ratings})
        assert response.status_code == status and response.json()["error"]
    assert _rows(fresh) == before
    assert (
        client.post("/api/trial", json={"listener": listener, "trial": trial["id"], "ratings": rest}).status_code == 201
    )
    assert _rows(fresh) == before + len(rest)


def test_audio_is_served_only_by_manifest_id(fresh):
    client = TestClient(create_app(fresh))
    manifest = Manifest(fresh)
    stim = next(iter(manifest.stimuli.values()))
    response = client.get(f"/audio/{stim.id}")
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    assert response.content == stim.path.read_bytes()
    for bad in [
        "../manifest.json",
        "..%2Fmanifest.json",
        "%2e%2e%2fmanifest.json",
        "stimuli/t001/noisy.wav",
        "hidden_reference",
        stim.id.upper(),
        stim.id + "0",
        "/etc/passwd",
    ]:
        response = client.get(f"/audio/{bad}")
        assert response.status_code == 404, bad
        assert b"RIFF" not in response.content and b"format_version" not in response.content
    assert client.get("/static/../manifest.json").status_code == 404
    page = client.get("/listen/<img src=x onerror=alert(1)>")
    assert page.status_code == 404 and "unknown listener" in page.text and "<img" not in page.text
    assert client.get("/static/mushra.js").status_code == 200


def test_a_token_is_required_on_every_request(fresh):
    client = TestClient(create_app(fresh, token="s3cret"))
    stim = next(iter(Manifest(fresh).stimuli))
    for path in ["/", "/static/style.css", f"/audio/{stim}", "/api/trials?listener=x"]:
        response = client.get(path)
        assert response.status_code == 403 and "token" in response.json()["error"], path
        assert client.get(path + ("&" if "?" in path else "?") + "token=wrong").status_code == 403, path
    assert client.post("/api/listeners", json={}).status_code == 403
    assert client.post("/api/listeners", json={}, headers={"X-Listen-Token": "s3cret"}).status_code == 201
    assert client.get(f"/audio/{stim}", headers={"X-Listen-Token": "s3cret"}).status_code == 200
    # the link's ?token= sets a cookie, so the page's own requests (audio, API) carry it
    assert client.get("/?token=s3cret").status_code == 200
    assert client.get(f"/audio/{stim}").status_code == 200


def test_a_changed_stimulus_is_refused_at_start(fresh):
    path = next(iter(Manifest(fresh).stimuli.values())).path
    path.write_bytes(path.read_bytes()[:-2] + b"\x00\x01")
    with pytest.raises(TestFolderError, match="content changed"):
        create_app(fresh)
