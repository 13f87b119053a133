"""The FastAPI app of `frugal serve`: validation, auth, limits, the cache, the batcher, metrics, probes.

Request path: size limit (ASGI middleware, before the body is read) -> API key -> pydantic body ->
per-item checks against the model's inputs -> cache lookup per item -> the misses go to the dynamic
batcher (429 when its queue is full, 504 after ``timeout_s``) -> answers cached, shadow offered a copy,
live drift window fed -> JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from frugalml.serve._batcher import DynamicBatcher, QueueFull
from frugalml.serve._cache import ResponseCache, cache_key
from frugalml.serve._config import ServeConfig, read_api_keys, split_pair
from frugalml.serve._metrics import ServeMetrics
from frugalml.serve._model import InputError, ServedModel
from frugalml.serve._stages import Cascade, Shadow, Single

__all__ = ["PredictRequest", "Server", "create_app"]

log = logging.getLogger(__name__)


class PredictRequest(BaseModel):
    """``inputs``: strings (text models) or flat lists of numbers (tensor models)."""

    model_config = ConfigDict(extra="forbid")
    inputs: list[Any] = Field(min_length=1)
    scores: bool = Field(default=False, strict=True)


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


class _BodyLimit:
    """ASGI middleware: 413 for a declared or streamed body over ``limit`` bytes, before it is parsed."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = _error(413, f"request body over the {self.limit:,}-byte limit (--max-body-bytes)")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_big(scope, receive, send)
            return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooBig
            return message

        try:
            await self.app(scope, limited, send)
        except _TooBig:
            await too_big(scope, receive, send)


class _TooBig(Exception):
    pass


class Server:
    """The running state behind the app: models, stages, batcher, cache, shadow, drift window, metrics."""

    def __init__(self, config: ServeConfig, *, models: dict[str, ServedModel] | None = None) -> None:
        self.config = config.checked()
        self.metrics = ServeMetrics()
        self.cache = ResponseCache(config.cache_size, config.cache_ttl_s)
        self.preloaded = models or {}
        self.ready = False
        self.loaded = False
        self.keys = read_api_keys(config.api_key_file) if config.api_key_file is not None else []
        self.shadow: Shadow | None = None
        self.drift: Any = None
        self.started = time.time()

    def _load(self, spec: str) -> ServedModel:
        return self.preloaded.get(spec) or ServedModel(spec, runtime=self.config.runtime, device=self.config.device,
                                                       split_batches=self.config.split_batches)

    def start(self) -> None:
        """Load the models, warm them up and read the drift reference (blocking; once: `frugal serve` calls
        it before listening, so a bad model or dataset is one error line, and the app's start-up then skips it)."""
        if self.loaded:
            return
        c = self.config
        if c.cascade is not None:
            small, large = split_pair(c.cascade)
            self.stage: Single | Cascade = Cascade(self._load(small), self._load(large), c.threshold,
                                                   self.metrics)
            self.model = self.stage.small
            self.stage.large.warm_up(max_batch=c.max_batch)
        else:
            self.model = self._load(str(c.model))
            self.stage = Single(self.model)
        self.model.warm_up(max_batch=c.max_batch)
        if c.shadow is not None:
            self.shadow = Shadow(self._load(c.shadow), self.model, self.metrics)
            try:
                self.shadow.candidate.warm_up(max_batch=c.max_batch)
            except Exception:  # noqa: BLE001 - a broken candidate must not stop the primary from serving
                log.warning("shadow %s failed its warm-up; serving anyway (its failures are counted)", c.shadow,
                            exc_info=True)
        if c.reference is not None:
            self.drift = self._drift_window(c.reference)
        self.loaded = True

    def _drift_window(self, reference: str) -> Any:
        from frugalml.datasets import load_dataset
        from frugalml.monitor import DriftWindow

        data = load_dataset(reference, argument="reference")
        items = self.model.handle.items_of(data)
        rows = np.random.default_rng(0).permutation(len(items))[:2000]
        picked = [items[i] for i in rows] if isinstance(items, list) else items[rows]
        outputs = self.model.handle.predict(picked, batch_size=64, bucket=True)
        features = None if self.model.kind == "text" else np.asarray(picked, dtype=float).reshape(len(rows), -1)

        def publish(results: list[Any]) -> None:
            for r in results:
                value = r.psi if r.psi is not None else r.statistic
                self.metrics.drift_score.labels(r.feature, "psi" if r.psi is not None else r.test).set(value)
                self.metrics.drift_alert.labels(r.feature, r.test).set(1.0 if r.level == "alert" else 0.0)

        return DriftWindow(features, outputs, self.model.task, window=self.config.drift_window,
                           every=self.config.drift_every, publish=publish)

    def run_batch(self, items: list[Any]) -> list[dict[str, Any]]:
        """Inference for one batch (on the batcher's thread): answers, then copies to shadow and drift."""
        started = time.perf_counter()
        answers = self.stage(items)
        seconds = time.perf_counter() - started
        if self.shadow is not None:
            self.shadow.offer(items, answers, seconds)
        if self.drift is not None:
            features = None if self.model.kind == "text" else np.asarray(items, dtype=float)
            outputs = np.asarray([a.get("scores") or a.get("embedding") or [a.get("value", 0.0)] for a in answers])
            self.drift.add(features, _logits_like(self.model.task, outputs))
        return answers

    def authorised(self, request: Request) -> bool:
        if not self.keys:
            return True
        given = request.headers.get("x-api-key") or ""
        auth = request.headers.get("authorization") or ""
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return any(hmac.compare_digest(given.encode(), key) for key in self.keys)


def _logits_like(task: str, outputs: np.ndarray) -> np.ndarray:
    """The drift window compares raw outputs; for classifiers the answers carry probabilities, whose
    logarithm has the same arg-max and softmax as the logits."""
    return np.log(np.clip(outputs, 1e-12, None)) if task == "classification" else outputs


def create_app(config: ServeConfig, *, models: dict[str, ServedModel] | None = None,
               on_shutdown: Callable[[], None] | None = None) -> FastAPI:
    """The app for ``config``; ``models`` (spec -> ServedModel) skips loading those specs (tests);
    ``on_shutdown`` runs last when the app shuts down (``frugal serve``: delete decrypted model files)."""
    server = Server(config, models=models)
    c = server.config

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(server.start)  # no-op when `frugal serve` already started it
        server.batcher = DynamicBatcher(server.run_batch, max_batch=c.max_batch, max_wait_ms=c.max_wait_ms,
                                        max_queue=c.max_queue, on_batch=lambda n, s: (
                                            server.metrics.batch_size.observe(n), server.metrics.batch_latency.observe(s)))
        await server.batcher.start()
        server.ready = True
        log.info("serving %s (%s, %s) batch<=%d wait<=%.1f ms", server.stage.spec, server.model.task, server.model.kind,
                 c.max_batch, c.max_wait_ms)
        try:
            yield
        finally:
            try:
                server.ready = False
                await server.batcher.stop()
                if server.shadow is not None:
                    server.shadow.close()
                    _record_shadow(server)
            finally:
                if on_shutdown is not None:
                    on_shutdown()

    app = FastAPI(title="frugalml serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = server
    app.add_middleware(_BodyLimit, limit=c.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            detail = (first.get("ctx") or {}).get("error", "")
            first = {"loc": ("body",), "msg": f"is not valid JSON ({detail})" if detail else "is not valid JSON"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        server.metrics.errors.labels("invalid").inc()
        server.metrics.requests.labels(request.url.path, "422").inc()
        kind = request.headers.get("content-type", "")
        if "json" not in kind:  # e.g. curl -d without -H: FastAPI did not parse the body as JSON
            return _error(422, f"the body was sent as {kind or 'no content type'!r}: send JSON with "
                               "'Content-Type: application/json'")
        sep = " " if where == "body" and first.get("msg", "").startswith("is ") else ": "
        return _error(422, f"{where}{sep}{first.get('msg', 'invalid request')}. Send JSON like "
                           '{"inputs": ["some text"]} or {"inputs": [[0.0, 1.0, ...]]}.')

    async def handle(request: Request, body: PredictRequest, endpoint: str) -> Response:
        started = time.perf_counter()
        m = server.metrics

        def done(status: int, response: Response) -> Response:
            m.requests.labels(endpoint, str(status)).inc()
            m.latency.labels(endpoint).observe(time.perf_counter() - started)
            return response

        if not server.authorised(request):
            m.errors.labels("unauthorised").inc()
            return done(401, _error(401, "missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                                    **{"WWW-Authenticate": "Bearer"}))
        if not server.ready:
            return done(503, _error(503, "the model is still loading; retry shortly", **{"Retry-After": "1"}))
        model = server.model
        wanted = "/v1/embed" if model.task == "embedding" else "/v1/predict"
        if endpoint != wanted:
            m.errors.labels("wrong_endpoint").inc()
            return done(400, _error(400, f"{model.spec} is a {model.task} model: use POST {wanted}"))
        if len(body.inputs) > c.max_items:
            m.errors.labels("too_many_items").inc()
            return done(413, _error(413, f"{len(body.inputs)} inputs in one request; the limit is {c.max_items} "
                                         "(--max-items): split the request"))
        try:
            items = model.check_items(body.inputs, max_text_chars=c.max_text_chars)
        except InputError as exc:
            m.errors.labels("invalid").inc()
            return done(422, _error(422, str(exc)))
        keys = [cache_key(endpoint, server.stage.spec, item) for item in items]
        answers: list[Any] = [server.cache.get(k) for k in keys]
        missing = [i for i, a in enumerate(answers) if a is None]
        m.cache_hits.inc(len(items) - len(missing))
        m.cache_misses.inc(len(missing))
        if missing:
            m.queue_depth.set(server.batcher.depth)
            try:
                fresh = await asyncio.wait_for(server.batcher.submit([items[i] for i in missing]), c.timeout_s)
            except QueueFull as exc:
                m.errors.labels("queue_full").inc()
                return done(429, _error(429, f"server busy ({exc}); retry after 1 s", **{"Retry-After": "1"}))
            except asyncio.TimeoutError:
                m.errors.labels("timeout").inc()
                return done(504, _error(504, f"no answer within {c.timeout_s:g} s (--timeout-s)"))
            except Exception as exc:  # noqa: BLE001 - a failed batch is this request's 500, not the server's end
                m.errors.labels("inference").inc()
                return done(500, _error(500, f"inference failed: {type(exc).__name__}: {exc}"))
            for i, answer in zip(missing, fresh):
                answers[i] = answer
                server.cache.put(keys[i], answer)
        m.items.labels(endpoint).inc(len(items))
        if endpoint == "/v1/embed":
            payload: dict[str, Any] = {"model": server.stage.spec, "embeddings": [a["embedding"] for a in answers],
                                       "dims": len(answers[0]["embedding"])}
        else:
            keep = (lambda a: a) if body.scores else (lambda a: {k: v for k, v in a.items() if k != "scores"})
            payload = {"model": server.stage.spec, "predictions": [keep(a) for a in answers]}
        return done(200, JSONResponse(payload, headers={"X-Cache-Hits": str(len(items) - len(missing))}))

    @app.post("/v1/predict")
    async def predict(request: Request, body: PredictRequest) -> Response:
        return await handle(request, body, "/v1/predict")

    @app.post("/v1/embed")
    async def embed(request: Request, body: PredictRequest) -> Response:
        return await handle(request, body, "/v1/embed")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - server.started, 1)}

    @app.get("/readyz")
    async def readyz() -> Response:
        if not server.ready:
            return _error(503, "loading")
        info: dict[str, Any] = {"status": "ready", "model": server.stage.spec, "task": server.model.task,
                                "input": server.model.kind}
        overhead = server.model.overhead_tokens_
        if overhead is not None and math.isfinite(overhead):  # the model splits mixed-length batches
            info["split_overhead_tokens"] = round(overhead, 1)
        if isinstance(server.stage, Cascade):
            info["cascade"] = {"small": server.stage.small.spec, "large": server.stage.large.spec,
                               "threshold": server.stage.threshold}
        if server.shadow is not None:
            info["shadow"] = server.shadow.summary()
        if server.drift is not None:
            info["drift"] = [r.to_dict() for r in server.drift.latest]
        return JSONResponse(info)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if not server.authorised(request):
            return _error(401, "missing or wrong API key", **{"WWW-Authenticate": "Bearer"})
        server.metrics.queue_depth.set(server.batcher.depth if server.ready else 0)
        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _record_shadow(server: Server) -> None:
    """The shadow's agreement and latency, as a ``shadow`` run in the store (at shutdown)."""
    summary = server.shadow.summary() if server.shadow is not None else None
    if not summary or not summary["compared"] and not summary["error"]:
        return
    try:
        from frugalml.store import Measurement, open_store

        run = open_store(server.config.store).start_run(
            "shadow", name=f"{server.stage.spec} vs {summary['candidate']}",
            config={"primary": server.stage.spec, "candidate": summary["candidate"]})
        measurements = [Measurement("compared", summary["compared"], "count"),
                        Measurement("errors", summary["error"], "count"),
                        Measurement("dropped", summary["dropped"], "count")]
        if summary["agreement"] is not None:
            measurements.append(Measurement("agreement", summary["agreement"], "fraction"))
        for key in ("shadow_batch_ms_p50", "primary_batch_ms_p50"):
            if summary[key] is not None:
                measurements.append(Measurement(key.removesuffix("_p50").replace("_ms", "_latency_p50"), summary[key],
                                                "ms"))
        run.finish(result=summary, measurements=measurements)
    except Exception:  # noqa: BLE001 - shutting down: log, do not mask the shutdown
        log.warning("could not record the shadow comparison in the store", exc_info=True)
