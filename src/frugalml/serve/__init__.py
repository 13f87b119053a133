"""Serving (``frugal serve``): a FastAPI model server with dynamic batching, a response cache,
backpressure, limits, API keys and TLS, Prometheus metrics, cascades, shadow deployments and a live
drift monitor; :func:`ray_deployment` for Ray Serve."""

from frugalml.serve._app import PredictRequest, Server, create_app
from frugalml.serve._batcher import DynamicBatcher, QueueFull
from frugalml.serve._cache import ResponseCache, cache_key
from frugalml.serve._config import ServeConfig
from frugalml.serve._model import ServedModel
from frugalml.serve._ray import ray_deployment
from frugalml.serve._run import serve
from frugalml.serve._stages import Cascade, Shadow

__all__ = ["Cascade", "DynamicBatcher", "PredictRequest", "QueueFull", "ResponseCache", "ServeConfig", "ServedModel",
           "Server", "Shadow", "cache_key", "create_app", "ray_deployment", "serve"]
