"""`frugal serve`'s app end to end (FastAPI TestClient, real zoo models): answers, cache, limits, errors,
auth, metrics, cascade, shadow, live drift; and the command's option checks."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from frugalml.errors import InvalidArgumentError
from frugalml.serve import ServeConfig, ServedModel, create_app
from frugalml.serve._config import split_pair


@pytest.fixture(scope="module")
def mlp() -> ServedModel:
    return ServedModel("zoo:digits-mlp")


@pytest.fixture(scope="module")
def cnn() -> ServedModel:
    return ServedModel("zoo:digits-cnn")


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from frugalml.datasets import load_dataset

    d = load_dataset("zoo:digits", split="test")
    return d.features(), d.labels()


def _client(mlp: ServedModel, **options) -> TestClient:
    models = {"zoo:digits-mlp": mlp, **options.pop("models", {})}
    return TestClient(create_app(ServeConfig(model=options.pop("model", "zoo:digits-mlp"), **options), models=models))


def test_predict_answers_like_the_model_and_caches(mlp: ServedModel, digits) -> None:
    x, y = digits
    with _client(mlp) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/readyz").json() == {"status": "ready", "model": "zoo:digits-mlp", "task": "classification",
                                                "input": "tensor"}
        r = client.post("/v1/predict", json={"inputs": x[:20].tolist(), "scores": True})
        assert r.status_code == 200 and r.headers["x-cache-hits"] == "0"
        predictions = r.json()["predictions"]
        expected = mlp.handle.predict(x[:20]).argmax(1)
        assert [p["index"] for p in predictions] == expected.tolist()
        assert all(abs(sum(p["scores"]) - 1) < 1e-6 and p["label"] == str(p["index"]) for p in predictions)
        assert np.mean([p["index"] for p in predictions] == y[:20]) > 0.8
        again = client.post("/v1/predict", json={"inputs": x[:20].tolist()})
        assert again.headers["x-cache-hits"] == "20" and "scores" not in again.json()["predictions"][0]
        assert [p["index"] for p in again.json()["predictions"]] == expected.tolist()
        metrics = client.get("/metrics").text
        assert 'frugal_requests_total{endpoint="/v1/predict",status="200"} 2.0' in metrics
        assert "frugal_cache_hits_total 20.0" in metrics and "frugal_batch_size_bucket" in metrics
    with _client(mlp, cache_size=0) as client:
        client.post("/v1/predict", json={"inputs": x[:2].tolist()})
        assert client.post("/v1/predict", json={"inputs": x[:2].tolist()}).headers["x-cache-hits"] == "0"


def test_bad_requests_get_one_clear_4xx(mlp: ServedModel) -> None:
    with _client(mlp, max_items=4, max_body_bytes=4096) as client:
        cases = [
            ({"inputs": [[0.0] * 63]}, 422, "inputs[0] has 63 numbers; zoo:digits-mlp takes 64"),
            ({"inputs": ["some text"]}, 422, "must be a list of 64 numbers"),
            ({"inputs": []}, 422, "inputs: List should have at least 1 item"),
            ({"input": [[0.0] * 64]}, 422, "inputs: Field required"),
            ({"inputs": [[0.0] * 64], "scores": "yes"}, 422, "scores"),
            ({"inputs": [[0.0] * 64] * 5}, 413, "5 inputs in one request; the limit is 4"),
            ({"inputs": [[0.0] * 64] * 4, "pad": "x" * 5000}, 413, "over the 4,096-byte limit"),
        ]
        for body, status, message in cases:
            r = client.post("/v1/predict", json=body)
            assert r.status_code == status and message in r.json()["error"], (body.keys(), r.json())
        nan = b'{"inputs": [[' + b"0.0, " * 63 + b"NaN]]}"  # Python's JSON parser accepts NaN; the model must not
        r = client.post("/v1/predict", content=nan, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "NaN" in r.json()["error"]
        r = client.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422 and "JSON" in r.json()["error"]
        r = client.post("/v1/predict", content=b'{"inputs": [[0]]}',
                        headers={"content-type": "application/x-www-form-urlencoded"})  # curl -d without -H
        assert r.status_code == 422 and "Content-Type: application/json" in r.json()["error"]
        r = client.post("/v1/embed", json={"inputs": [[0.0] * 64]})
        assert r.status_code == 400 and "use POST /v1/predict" in r.json()["error"]
        assert client.post("/v1/predict", json={"inputs": [[0.0] * 64]}).status_code == 200  # still serving
        assert 'frugal_errors_total{kind="invalid"}' in client.get("/metrics").text


def test_api_keys(mlp: ServedModel, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# one per line\nalpha-key\nbeta-key\n")
    with _client(mlp, api_key_file=keys) as client:
        body = {"inputs": [[0.0] * 64]}
        assert client.post("/v1/predict", json=body).status_code == 401
        assert client.post("/v1/predict", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.post("/v1/predict", json=body, headers={"Authorization": "Bearer beta-key"}).status_code == 200
        assert client.post("/v1/predict", json=body, headers={"X-API-Key": "alpha-key"}).status_code == 200
        assert client.get("/metrics").status_code == 401 and client.get("/healthz").status_code == 200
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(InvalidArgumentError, match="holds no key"):
        create_app(ServeConfig(model="zoo:digits-mlp", api_key_file=tmp_path / "empty"), models={"zoo:digits-mlp": mlp})


def test_text_embeddings(minilm) -> None:
    model = ServedModel("zoo:minilm")
    with TestClient(create_app(ServeConfig(model="zoo:minilm"), models={"zoo:minilm": model})) as client:
        r = client.post("/v1/embed", json={"inputs": ["a cat sat on the mat", "the dog barked"]})
        assert r.status_code == 200 and r.json()["dims"] == 384 and len(r.json()["embeddings"]) == 2
        direct = model.handle.predict(["the dog barked"])[0]
        assert np.allclose(r.json()["embeddings"][1], direct, atol=1e-4)
        assert client.post("/v1/embed", json={"inputs": [[1.0, 2.0]]}).json()["error"].startswith("inputs[0] must be a "
                                                                                                   "string")
        assert client.post("/v1/predict", json={"inputs": ["x"]}).status_code == 400


@pytest.mark.cuda
def test_text_embeddings_on_cuda(minilm) -> None:
    cpu, gpu = ServedModel("zoo:minilm"), ServedModel("zoo:minilm", device="cuda")
    config = ServeConfig(model="zoo:minilm", device="cuda").checked()
    with TestClient(create_app(config, models={"zoo:minilm": gpu})) as client:
        texts = ["a cat sat on the mat", "the dog barked", "x"]
        r = client.post("/v1/embed", json={"inputs": texts})
        assert r.status_code == 200
        assert np.allclose(r.json()["embeddings"], cpu.run(texts), atol=1e-3)
    assert next(gpu.handle.module.parameters()).is_cuda


def test_cascade_escalates_only_unsure_items(mlp: ServedModel, cnn: ServedModel, digits) -> None:
    x, _ = digits
    models = {"zoo:digits-cnn": cnn}
    with _client(mlp, model=None, cascade="zoo:digits-mlp:zoo:digits-cnn", threshold=0.99, models=models) as client:
        body = client.post("/v1/predict", json={"inputs": x[:60].tolist()}).json()
        assert body["model"] == "zoo:digits-mlp:zoo:digits-cnn"  # the pair answered, not the small model alone
        answers = body["predictions"]
        small = mlp.handle.predict(x[:60])
        confident = (np.exp(small - small.max(1, keepdims=True)) / np.exp(small - small.max(1, keepdims=True)).sum(1,
                     keepdims=True)).max(1) >= 0.99
        assert [a["stage"] for a in answers] == ["small" if c else "large" for c in confident]
        assert 0 < confident.sum() < 60
        large = cnn.handle.predict(x[:60].reshape(-1, 1, 8, 8)).argmax(1)
        assert all(a["index"] == int(large[i]) for i, a in enumerate(answers) if a["stage"] == "large")
        metrics = client.get("/metrics").text
        assert f'frugal_cascade_items_total{{stage="large"}} {float(60 - confident.sum())}' in metrics
        ready = client.get("/readyz").json()
        assert ready["model"] == "zoo:digits-mlp:zoo:digits-cnn"
        assert ready["cascade"] == {"small": "zoo:digits-mlp", "large": "zoo:digits-cnn", "threshold": 0.99}
    with pytest.raises(InvalidArgumentError, match="threshold"):
        create_app(ServeConfig(cascade="zoo:digits-mlp:zoo:digits-cnn", threshold=1.5), models={
            "zoo:digits-mlp": mlp, "zoo:digits-cnn": cnn}).state.server.start()


def test_shadow_is_compared_recorded_and_never_answers(mlp: ServedModel, cnn: ServedModel, digits, store_url: str) -> None:
    from frugalml.store import open_store

    x, _ = digits
    body = {"inputs": x[:40].tolist()}
    with _client(mlp) as client:
        plain = client.post("/v1/predict", json=body).json()
    with _client(mlp, shadow="zoo:digits-cnn", models={"zoo:digits-cnn": cnn}, store=store_url) as client:
        assert client.post("/v1/predict", json=body).json() == plain  # answers come from the primary
        deadline = time.time() + 30
        while client.get("/readyz").json()["shadow"]["compared"] < 40 and time.time() < deadline:
            time.sleep(0.05)
        summary = client.get("/readyz").json()["shadow"]
        assert summary["compared"] == 40 and 0.5 < summary["agreement"] <= 1.0 and summary["error"] == 0
    runs = open_store(store_url).list_runs(kind="shadow", limit=1)
    run = open_store(store_url).get_run(runs[0].id)
    assert run.result["compared"] == 40 and {m.name for m in run.measurements} >= {"agreement", "compared"}


def test_a_crashing_shadow_changes_no_response(mlp: ServedModel, digits, monkeypatch: pytest.MonkeyPatch) -> None:
    x, _ = digits
    broken = ServedModel("zoo:digits-mlp")
    with _client(mlp) as client:
        plain = client.post("/v1/predict", json={"inputs": x[:10].tolist()}).json()
    with _client(mlp, shadow="shadow-model", models={"shadow-model": broken}, cache_size=0) as client:
        def crash(items):  # fault injection: the candidate raises on every batch
            raise RuntimeError("candidate crashed")

        monkeypatch.setattr(broken, "run", crash)
        for _ in range(3):
            r = client.post("/v1/predict", json={"inputs": x[:10].tolist()})
            assert r.status_code == 200 and r.json()["predictions"] == plain["predictions"]
        deadline = time.time() + 10
        while client.get("/readyz").json()["shadow"]["error"] < 30 and time.time() < deadline:
            time.sleep(0.05)
        assert client.get("/readyz").json()["shadow"]["error"] == 30
        assert 'frugal_shadow_total{outcome="error"} 30.0' in client.get("/metrics").text


def test_live_drift_monitor_alerts_on_shifted_traffic(mlp: ServedModel, digits) -> None:
    x, _ = digits
    shifted = np.clip(x + 6.0, 0, 16)
    with _client(mlp, reference="zoo:digits", drift_window=100, drift_every=100, cache_size=0) as client:
        for start in range(0, 100, 25):
            assert client.post("/v1/predict", json={"inputs": shifted[start:start + 25].tolist()}).status_code == 200
        deadline = time.time() + 30
        while not client.get("/readyz").json()["drift"] and time.time() < deadline:
            time.sleep(0.1)
        drift = client.get("/readyz").json()["drift"]
        assert any(d["level"] == "alert" for d in drift if d["feature"].startswith("x"))
        assert 'frugal_drift_alert{feature="x10",test="ks"} 1.0' in client.get("/metrics").text


def test_config_checks() -> None:
    bad = [({"model": "m", "max_batch": 0}, "max_batch"), ({"model": "m", "port": 70000}, "port"),
           ({}, "give a model"), ({"model": "m", "cascade": "a:b"}, "not both"),
           ({"model": "m", "max_items": 2000, "max_queue": 100}, "max_items"),
           ({"model": "m", "ssl_certfile": "cert.pem"}, "both"), ({"model": "m", "timeout_s": 0}, "timeout_s"),
           ({"cascade": "only-one"}, "SMALL:LARGE"), ({"model": "m", "api_key_file": "/no/such"}, "no such file"),
           ({"model": "m", "device": "tpu"}, "not one of cpu, cuda")]
    if not torch.cuda.is_available():
        bad.append(({"model": "m", "device": "cuda"}, "no CUDA GPU"))
    for options, match in bad:
        with pytest.raises(InvalidArgumentError, match=match):
            ServeConfig(**options).checked()
    assert split_pair("zoo:digits-mlp:zoo:digits-cnn") == ("zoo:digits-mlp", "zoo:digits-cnn")
    assert split_pair("small/dir:zoo:minilm") == ("small/dir", "zoo:minilm")


_name = st.text(st.characters(blacklist_characters=":", blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda s: s != "zoo")


@given(a=_name, b=_name, zoo_a=st.booleans(), zoo_b=st.booleans())
def test_split_pair_round_trips(a: str, b: str, zoo_a: bool, zoo_b: bool) -> None:
    small, large = f"zoo:{a}" if zoo_a else a, f"zoo:{b}" if zoo_b else b
    assert split_pair(f"{small}:{large}") == (small, large)


def test_cli_refuses_bad_options(cli) -> None:
    code, _, err = cli(["serve", "zoo:digits-mlp", "--max-batch", "0"])
    assert code == 2 and "max_batch=0" in err and "Traceback" not in err
    code, _, err = cli(["serve", "zoo:digits-mlp", "--ssl-certfile", "x.pem"])
    assert code == 2 and "ssl" in err
    code, _, err = cli(["serve", "zoo:no-such-model", "--port", "1"])
    assert code == 2 and "no such built-in model" in err and "Traceback" not in err
    code, _, err = cli(["serve", "zoo:digits-mlp", "--reference", "/no/such.csv", "--workers", "2"])
    assert code == 2 and "no such file" in err and "Traceback" not in err


@pytest.mark.parametrize("workers", [1, 2])
def test_frugal_serve_listens_and_answers(workers: int, tmp_path: Path) -> None:
    """The real command in a subprocess: uvicorn on a free loopback port, one worker or two processes,
    serving an encrypted artifact (frugal --key-file); stopped by SIGTERM, as a service manager stops
    it, no decrypted copy is left behind (uvicorn re-raises the signal, which skips exit handlers)."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    from frugalml import compress, load_model
    from frugalml.compress import PruneStructured, save_model

    key = tmp_path / "key"
    key.write_bytes(os.urandom(32))
    artifact = save_model(compress(load_model("zoo:digits-mlp"), [PruneStructured(amount=0.5)]), tmp_path / "enc",
                          encrypt_key=key.read_bytes())
    scratch = tmp_path / "tmp"  # the server's temporary directory: where decrypted copies go
    scratch.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "FRUGAL_STORE": f"sqlite:///{tmp_path / 'runs.db'}", "TMPDIR": str(scratch)}
    env.pop("FRUGAL_KEY_FILE", None)
    proc = subprocess.Popen([sys.executable, "-m", "frugalml", "--key-file", str(key), "serve", str(artifact),
                             "--port", str(port), "--workers", str(workers)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail(f"no server: {proc.stderr.read1().decode() if proc.poll() is not None else 'still starting'}")
        r = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"inputs": [[0.0] * 64] * 3})
        assert r.status_code == 200 and len(r.json()["predictions"]) == 3
        # each serving process holds its own decrypted copy (with workers, the parent's is gone; a
        # second worker may still be loading when the first answers)
        assert 1 <= len(list(scratch.glob("frugalml-decrypted-*"))) <= workers
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert list(scratch.glob("frugalml-decrypted-*")) == []


def test_a_compiled_model_is_served_with_power_of_two_batches(mlp, digits, tmp_path: Path, monkeypatch) -> None:
    from frugalml.compress import Compile, compress, save_model
    from frugalml.models import load_model
    from frugalml.models._handle import TorchRunner

    folder = save_model(compress(load_model("zoo:digits-mlp"), [Compile(backend="aot_eager")]), tmp_path / "c")
    served = ServedModel(str(folder))
    assert served.compiled and not mlp.compiled
    rows = []
    prepare = TorchRunner.prepare
    monkeypatch.setattr(TorchRunner, "prepare", lambda self, items, seq_len: rows.append(len(items)) or
                        prepare(self, items, seq_len))
    x = [list(map(float, row)) for row in digits[0][:5]]
    out = served.run(x)
    assert rows == [8] and out.shape == (5, 10)  # 5 requests ran as 8 rows, 5 answers
    rows.clear()
    np.testing.assert_allclose(out, mlp.run(x), atol=1e-5)
    assert rows == [5]  # an uncompiled model runs the batch as it is


def test_a_compiled_model_warms_up_every_batch_size_it_can_form(mlp, tmp_path: Path, monkeypatch) -> None:
    from frugalml.compress import Compile, compress, save_model
    from frugalml.models import load_model
    from frugalml.models._handle import TorchRunner

    folder = save_model(compress(load_model("zoo:digits-mlp"), [Compile(backend="aot_eager")]), tmp_path / "c")
    served = ServedModel(str(folder))
    rows: list[int] = []
    prepare = TorchRunner.prepare
    monkeypatch.setattr(TorchRunner, "prepare", lambda self, items, seq_len: rows.append(len(items)) or
                        prepare(self, items, seq_len))
    served.warm_up(max_batch=5)
    assert rows == [1, 2, 4, 8]  # batches of 5 requests run as 8 rows (see run)
    rows.clear()
    served.warm_up(max_batch=32)
    assert rows == [1, 2, 4, 8, 16, 32]
    rows.clear()
    mlp.warm_up(max_batch=32)
    assert rows == [1]  # an uncompiled model has nothing to compile: one item


def test_a_compiled_text_model_also_warms_up_a_second_length(minilm, monkeypatch) -> None:
    served = ServedModel("zoo:minilm")
    served.compiled = True  # which batches the warm-up asks for; compiling MiniLM is the compile tests' job
    batches: list[list[str]] = []
    monkeypatch.setattr(served, "run", lambda items: batches.append(items))
    served.warm_up(max_batch=4)
    assert [len(b) for b in batches] == [1, 2, 4, 2, 1]
    # the second length at two rows and at one: PyTorch specialises size-1 dimensions
    assert len(batches[-2][0].split()) == len(batches[-1][0].split()) > len(batches[0][0].split())
    batches.clear()
    served.runtime = "onnxruntime"  # not a torch model: ONNX Runtime has nothing to compile
    served.warm_up(max_batch=4)
    assert [len(b) for b in batches] == [1]


def test_a_cascade_or_shadow_of_two_label_sets_is_refused(text_classifier, tmp_path: Path) -> None:
    import json
    import shutil

    from frugalml.serve._metrics import ServeMetrics
    from frugalml.serve._stages import Cascade, Shadow

    other = tmp_path / "other"
    shutil.copytree(text_classifier["dir"], other)
    config = json.loads((other / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "spam", "1": "ham"}, {"spam": 0, "ham": 1}
    (other / "config.json").write_text(json.dumps(config))
    mine, theirs = ServedModel(str(text_classifier["dir"])), ServedModel(str(other))
    assert mine.labels == ["neg", "pos"] and theirs.labels == ["spam", "ham"]
    with pytest.raises(InvalidArgumentError, match=r"^cascade=.*names its classes spam, ham where .* has neg, pos"):
        Cascade(mine, theirs, 0.9, ServeMetrics())
    with pytest.raises(InvalidArgumentError, match=r"^shadow=.*names its classes spam, ham"):
        Shadow(theirs, mine, ServeMetrics())
    Cascade(mine, ServedModel(str(text_classifier["dir"])), 0.9, ServeMetrics())  # one label set: fine
