"""The Ray Serve deployment: the same app on two replicas of a local Ray instance, over real HTTP."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("ray.serve", reason="needs ray[serve] (pip install 'frugalml[serve,ray]')")


def test_ray_deployment_serves_the_same_api() -> None:
    import httpx
    import ray
    from ray import serve

    from frugalml.serve import ServeConfig, ray_deployment

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(ray_deployment(ServeConfig(model="zoo:digits-mlp"), num_replicas=2, num_cpus=0.5), route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        r = httpx.post(f"{url}/v1/predict", json={"inputs": [[0.0] * 64] * 3}, timeout=60)
        assert r.status_code == 200 and len(r.json()["predictions"]) == 3
        assert httpx.get(f"{url}/readyz", timeout=30).json()["status"] == "ready"
        bad = httpx.post(f"{url}/v1/predict", json={"inputs": [[0.0] * 3]}, timeout=30)
        assert bad.status_code == 422 and "takes 64" in bad.json()["error"]
    finally:
        serve.shutdown()
        ray.shutdown()


def test_ray_deployment_checks_its_arguments() -> None:
    from frugalml.errors import InvalidArgumentError
    from frugalml.serve import ServeConfig, ray_deployment

    with pytest.raises(InvalidArgumentError, match="num_replicas"):
        ray_deployment(ServeConfig(model="zoo:digits-mlp"), num_replicas=0)
    with pytest.raises(InvalidArgumentError, match="max_batch"):
        ray_deployment(ServeConfig(model="zoo:digits-mlp", max_batch=0))
