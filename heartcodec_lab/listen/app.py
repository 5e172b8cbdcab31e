"""The listening-test web app (Starlette): a start page, one page per trial, a thank-you page, the JSON API
and the stimuli, served by manifest id only.

    app = create_app("listen/ab", token=None)     # uvicorn.run(app, host="127.0.0.1", port=8000)

JSON API (every error is ``{"error": message}`` with a 4xx status and changes nothing):

* ``POST /api/listeners`` ``{"name": str (optional)}`` -> 201 ``{"listener": id}``
* ``GET /api/trials?listener=ID`` -> ``[{"id", "position", "reference", "conditions": [condition id, ...], "done"}]``,
  the trials in this listener's order, each trial's conditions shuffled (hidden reference and anchors included)
* ``POST /api/rating`` ``{"listener", "trial", "condition", "score"}`` -> 201 (one rating)
* ``POST /api/trial`` ``{"listener", "trial", "ratings": {condition id: score, ...}}`` -> 201 (the rest of a
  trial: with what is stored, every condition; one transaction; what the page sends)
* ``GET /audio/{id}`` -> the stimulus WAV

With a token, every request needs it: ``?token=T``, header ``X-Listen-Token: T`` or the cookie the pages set.
"""

from __future__ import annotations

import contextlib
import hmac
import html
import json
import math
import re
from importlib import resources
from pathlib import Path
from string import Template
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from heartcodec_lab.listen.manifest import Manifest
from heartcodec_lab.listen.store import LISTENER_ID, DuplicateRating, RatingStore

STIMULUS_ID = re.compile(r"^[a-f0-9]{12}$")
MAX_BODY = 64 * 1024
STATIC = {"style.css": "text/css", "mushra.js": "text/javascript"}
TOKEN_COOKIE = "listen_token"


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _asset(name: str) -> str:
    return resources.files("heartcodec_lab.listen").joinpath("static", name).read_text(encoding="utf-8")


def _page(name: str, **values) -> HTMLResponse:
    safe = {k: html.escape(str(v), quote=True) for k, v in values.items()}
    return HTMLResponse(Template(_asset(name)).substitute(safe))


class ListeningApp:
    """Routes over one test folder and its ``ratings.sqlite``."""

    def __init__(self, test_dir: str | Path, token: str | None = None):
        self.manifest = Manifest(test_dir)
        self.manifest.verify()
        self.store = RatingStore(Path(test_dir) / "ratings.sqlite")
        self.token = token or None

    # -- helpers --------------------------------------------------------------------------------------------
    def _suffix(self) -> str:
        return f"?token={quote(self.token)}" if self.token else ""

    async def _json(self, request: Request, keys: dict[str, type | tuple]) -> dict:
        body = await request.body()
        if len(body) > MAX_BODY:
            raise ApiError(413, f"request body over {MAX_BODY} bytes")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ApiError(400, f"malformed JSON: {err}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "expected a JSON object")
        unknown = sorted(set(data) - set(keys))
        if unknown:
            raise ApiError(400, f"unexpected field(s) {unknown}; expected {sorted(keys)}")
        for key, kind in keys.items():
            if key == "name":
                continue
            if key not in data:
                raise ApiError(400, f"missing field {key!r}")
            if not isinstance(data[key], kind) or isinstance(data[key], bool):
                raise ApiError(400, f"field {key!r} has the wrong type ({type(data[key]).__name__})")
        return data

    def _listener(self, listener) -> str:
        if not isinstance(listener, str) or not LISTENER_ID.match(listener) or not self.store.has_listener(listener):
            raise ApiError(404, f"unknown listener {str(listener)[:40]!r}; register with POST /api/listeners")
        return listener

    def _trial(self, trial) -> dict:
        if trial not in self.manifest.trial_by_id:
            raise ApiError(404, f"unknown trial {str(trial)[:40]!r}")
        return self.manifest.trial_by_id[trial]

    @staticmethod
    def _score(score) -> float:
        value = float(score)
        if not math.isfinite(value) or not 0 <= value <= 100:
            raise ApiError(422, f"score {score!r} is outside 0-100")
        return value

    def _condition(self, trial: str, stimulus) -> str:
        name = self.manifest.condition_of(trial, stimulus) if isinstance(stimulus, str) else None
        if name is None:
            raise ApiError(404, f"unknown condition {str(stimulus)[:40]!r} for trial {trial}")
        return name

    def _progress(self, listener: str) -> list[dict]:
        rated = self.store.rated(listener)
        trials = self.manifest.order(listener)
        for position, trial in enumerate(trials, start=1):
            needed = set(self.manifest.trial_by_id[trial["id"]]["stimuli"])
            trial["position"] = position
            trial["done"] = needed <= rated.get(trial["id"], set())
        return trials

    # -- pages ----------------------------------------------------------------------------------------------
    async def start(self, request: Request) -> Response:
        return _page(
            "start.html",
            title=self.manifest.title,
            test=self.manifest.test_id,
            trials=len(self.manifest.trials),
            conditions=len(self.manifest.conditions),
        )

    async def resume(self, request: Request) -> Response:
        listener = request.path_params["listener"]
        try:
            self._listener(listener)
        except ApiError as err:
            return HTMLResponse(f"<p>{html.escape(err.message)}</p><p><a href='/'>start</a></p>", status_code=404)
        trials = await run_in_threadpool(self._progress, listener)
        todo = next((t for t in trials if not t["done"]), None)
        target = f"/listen/{listener}/{todo['position']}" if todo else f"/thanks/{listener}"
        return RedirectResponse(target + self._suffix(), status_code=303)

    async def trial_page(self, request: Request) -> Response:
        listener, position = request.path_params["listener"], request.path_params["position"]
        try:
            self._listener(listener)
        except ApiError as err:
            return HTMLResponse(f"<p>{html.escape(err.message)}</p>", status_code=404)
        if not 1 <= position <= len(self.manifest.trials):
            return HTMLResponse(f"<p>no trial {position}</p>", status_code=404)
        return _page(
            "trial.html",
            title=self.manifest.title,
            test=self.manifest.test_id,
            listener=listener,
            position=position,
            total=len(self.manifest.trials),
        )

    async def thanks(self, request: Request) -> Response:
        return _page("thanks.html", title=self.manifest.title)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(_asset(name), media_type=STATIC[name])

    async def audio(self, request: Request) -> Response:
        stimulus = request.path_params["stimulus"]
        stim = self.manifest.stimuli.get(stimulus) if STIMULUS_ID.match(stimulus) else None
        if stim is None:
            return JSONResponse({"error": f"unknown stimulus {stimulus[:40]!r}"}, status_code=404)
        return FileResponse(stim.path, media_type="audio/wav")

    # -- API ------------------------------------------------------------------------------------------------
    async def new_listener(self, request: Request) -> Response:
        data = await self._json(request, {"name": str})
        name = data.get("name", "")
        if not isinstance(name, str) or len(name) > 100:
            raise ApiError(400, "name must be text of at most 100 characters")
        listener = await run_in_threadpool(self.store.add_listener, name.strip())
        return JSONResponse({"listener": listener}, status_code=201)

    async def trials(self, request: Request) -> Response:
        listener = self._listener(request.query_params.get("listener"))
        trials = await run_in_threadpool(self._progress, listener)
        return JSONResponse(trials)

    async def rating(self, request: Request) -> Response:
        data = await self._json(request, {"listener": str, "trial": str, "condition": str, "score": (int, float)})
        listener = self._listener(data["listener"])
        trial = self._trial(data["trial"])["id"]
        condition = self._condition(trial, data["condition"])
        score = self._score(data["score"])
        await run_in_threadpool(self.store.add_ratings, listener, trial, [(condition, data["condition"], score)])
        return JSONResponse({"stored": 1}, status_code=201)

    async def trial_ratings(self, request: Request) -> Response:
        data = await self._json(request, {"listener": str, "trial": str, "ratings": dict})
        listener = self._listener(data["listener"])
        trial = self._trial(data["trial"])
        rows = []
        for stimulus, score in data["ratings"].items():
            if not isinstance(score, (int, float)) or isinstance(score, bool):
                raise ApiError(400, f"score of {stimulus[:40]!r} must be a number")
            rows.append((self._condition(trial["id"], stimulus), stimulus, self._score(score)))
        stored = (await run_in_threadpool(self.store.rated, listener)).get(trial["id"], set())
        missing = set(trial["stimuli"]) - {name for name, _, _ in rows} - stored
        if missing:
            raise ApiError(422, f"trial {trial['id']}: {len(missing)} condition(s) not rated; rate every one")
        await run_in_threadpool(self.store.add_ratings, listener, trial["id"], rows)
        return JSONResponse({"stored": len(rows)}, status_code=201)

    # -- access ---------------------------------------------------------------------------------------------
    def allowed(self, request: Request) -> bool:
        if not self.token:
            return True
        given = (
            request.query_params.get("token")
            or request.headers.get("x-listen-token")
            or request.cookies.get(TOKEN_COOKIE)
            or ""
        )
        return hmac.compare_digest(given.encode(), self.token.encode())


def create_app(test_dir: str | Path, token: str | None = None) -> Starlette:
    """The Starlette app for ``test_dir`` (verified against its manifest's content hashes first)."""
    state = ListeningApp(test_dir, token)

    def api(handler):
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as err:
                return JSONResponse({"error": err.message}, status_code=err.status)
            except DuplicateRating as err:
                return JSONResponse({"error": f"duplicate: {err}"}, status_code=409)

        return wrapped

    routes = [
        Route("/", state.start),
        Route("/listen/{listener}", state.resume),
        Route("/listen/{listener}/{position:int}", state.trial_page),
        Route("/thanks/{listener}", state.thanks),
        Route("/static/{name}", state.static),
        Route("/audio/{stimulus}", state.audio),
        Route("/api/listeners", api(state.new_listener), methods=["POST"]),
        Route("/api/trials", api(state.trials)),
        Route("/api/rating", api(state.rating), methods=["POST"]),
        Route("/api/trial", api(state.trial_ratings), methods=["POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        state.store.close()

    async def check_token(request: Request, call_next):
        if not state.allowed(request):
            return JSONResponse(
                {"error": "missing or wrong access token (add ?token=... from the link you were given)"},
                status_code=403,
            )
        response = await call_next(request)
        if state.token and request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, state.token, httponly=True, samesite="strict")
        return response

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(BaseHTTPMiddleware, dispatch=check_token)])
    app.state.listening = state
    return app
