"""Ray Serve: the same app as `frugal serve`, as a deployment with N replicas, for users who outgrow one
machine. Each replica builds the app from the config (Ray Serve evaluates the builder on the replica),
so it loads its own model and batches on its own; Ray's proxy spreads requests over the replicas."""

from __future__ import annotations

from typing import Any

from frugalml.errors import InvalidArgumentError
from frugalml.serve._config import ServeConfig

__all__ = ["ray_deployment"]


def ray_deployment(config: ServeConfig, *, num_replicas: int = 1, num_cpus: float = 1.0) -> Any:
    """A bound Ray Serve application for ``config`` (``serve.run(ray_deployment(cfg))`` starts it).
    Host, port, TLS and workers are Ray's to set (``serve.start(http_options=...)``), not the config's."""
    from frugalml._validate import check_positive_int

    try:
        from ray import serve
    except ImportError:
        raise InvalidArgumentError("ray", "ray[serve]", "Ray Serve is not installed",
                                   "Run: pip install 'frugalml[serve]'.") from None
    check_positive_int(num_replicas, "num_replicas", maximum=10_000)
    if not num_cpus > 0:
        raise InvalidArgumentError("num_cpus", num_cpus, "must be > 0", "Use e.g. 1.")
    config = config.checked()
    payload = config.model_dump_json()

    def build() -> Any:  # runs on each replica
        from frugalml.compress.artifact import remove_decrypted
        from frugalml.serve._app import create_app

        # a replica is a process of its own: its decrypted copy of an encrypted artifact goes with it
        return create_app(ServeConfig.model_validate_json(payload), on_shutdown=remove_decrypted)

    deployment = serve.deployment(serve.ingress(build)(), name="frugalml", num_replicas=num_replicas,
                                  ray_actor_options={"num_cpus": num_cpus})
    return deployment.bind()
