"""Federated learning, simulated with Flower's simulation engine (Ray backend): ``simulate()``.

The training rows are split among ``clients`` virtual clients, non-IID by a Dirichlet(``alpha``) draw of
each class's share per client (small alpha: each client sees few classes), or IID. Every round the
server (a Flower ``ServerApp`` running FedAvg or FedProx) sends the global weights to the sampled clients;
each client (a Flower ``ClientApp`` in a Ray actor) trains ``local_epochs`` on its own rows and replies.
The global model is scored on the test rows after every round (server-side, centralised evaluation).

- ``compress_updates="int8"``: a client sends its update (local - global weights) quantized to int8
  with one float32 scale per tensor (symmetric, round to nearest), all tensors in one flat array; the
  server dequantizes, averages and adds. Downloads stay float32.
- ``privacy``: every client trains with DP-SGD (Opacus) with the noise multiplier that keeps all its
  planned steps (rounds x local epochs x batches) within (epsilon, delta) for its own rows, so each
  client's rows are (epsilon, delta)-DP, example-level, against everything it ever sends.
- Bytes are Flower's own count of each ``ArrayRecord`` (``count_bytes``: the serialized arrays and
  their keys), per round and direction, so compressed and plain runs are measured alike.

The same model is also trained centrally on the union of the clients' rows with the same optimizer,
batch size and number of passes over each row (rounds x local epochs), the reference the federated
accuracy is compared with.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from frugalml.errors import DataError, InvalidArgumentError

__all__ = ["STRATEGIES", "FederatedResult", "dirichlet_partition", "quantize_update", "simulate"]

log = logging.getLogger(__name__)

STRATEGIES = ("fedavg", "fedprox")
COMPRESSIONS = ("none", "int8")
_MIN_ROWS_PER_CLIENT = 2


@dataclass
class FederatedResult:
    """Accuracy per round (fraction, on the test rows), bytes per round (both directions), the centralised
    reference, and per-client privacy (with DP)."""

    config: dict[str, Any]
    rounds: list[dict[str, Any]]
    final_accuracy: float
    centralized_accuracy: float | None
    upload_bytes: int
    download_bytes: int
    upload_bytes_float32: int  # what the same updates weigh uncompressed (measured on the first round's arrays)
    partition: dict[str, Any]
    privacy: dict[str, Any] | None = None
    failures: int = 0
    seconds: float = 0.0
    run_id: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def gap(self) -> float | None:
        """Centralised minus federated accuracy (points as a fraction; positive: federated is worse)."""
        return None if self.centralized_accuracy is None else self.centralized_accuracy - self.final_accuracy

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gap": self.gap}


# ----------------------------------------------------------------------------- partitioning and updates
def dirichlet_partition(y: np.ndarray, clients: int, *, alpha: float | None, seed: int,
                        min_rows: int = _MIN_ROWS_PER_CLIENT, tries: int = 100) -> list[np.ndarray]:
    """Row positions of ``y`` per client. ``alpha=None``: IID (a seeded shuffle cut into equal parts).
    Otherwise each class's rows are shared out by proportions drawn from Dirichlet(alpha), redrawn until
    every client has ``min_rows`` rows."""
    if len(y) < clients * min_rows:
        raise DataError("clients", clients, f"the data has {len(y)} training rows, fewer than {min_rows} per client",
                        f"Use at most {len(y) // min_rows} clients, or more data.")
    rng = np.random.default_rng(seed)
    if alpha is None:
        return [np.sort(part) for part in np.array_split(rng.permutation(len(y)), clients)]
    for _ in range(tries):
        parts: list[list[int]] = [[] for _ in range(clients)]
        for label in np.unique(y):
            rows = rng.permutation(np.flatnonzero(y == label))
            shares = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
            for client, chunk in enumerate(np.split(rows, cuts)):
                parts[client].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_rows:
            return [np.sort(np.array(p, dtype=np.int64)) for p in parts]
    raise DataError("alpha", alpha, f"left a client with fewer than {min_rows} rows in {tries} draws",
                    "Use a larger alpha (less skew), fewer clients, or more data.")


def quantize_update(delta: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per tensor: (all tensors as one flat int8 array, float32 scale per tensor)."""
    scales = np.array([float(np.abs(v).max()) / 127.0 if v.size else 0.0 for v in delta.values()], dtype=np.float32)
    parts = [np.zeros(v.size, np.int8) if s == 0 else np.clip(np.rint(v / s), -127, 127).astype(np.int8).ravel()
             for v, s in zip(delta.values(), scales)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int8), scales


def dequantize_update(flat: np.ndarray, scales: np.ndarray, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for (name, ref), scale in zip(like.items(), scales):
        out[name] = flat[start:start + ref.size].astype(np.float32).reshape(ref.shape) * scale
        start += ref.size
    return out


# ----------------------------------------------------------------------------- local training
def _fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, lr: float, seed: int,
         mu: float = 0.0, noise_multiplier: float | None = None, max_grad_norm: float = 1.0) -> float:
    """Train ``model`` in place with SGD (momentum 0.9); ``mu`` adds FedProx's proximal term to the starting
    weights; ``noise_multiplier`` trains with DP-SGD (Opacus, Poisson sampling). Returns the mean loss."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    anchor = [p.detach().clone() for p in model.parameters()] if mu > 0 else []
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                                         generator=generator)
    net: nn.Module = model.train()
    if noise_multiplier is not None:
        from opacus import PrivacyEngine

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Secure RNG turned off")
            net, optimizer, loader = PrivacyEngine(accountant="rdp").make_private(
                module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=noise_multiplier,
                max_grad_norm=max_grad_norm)
    net.train()
    total, seen = 0.0, 0
    for _ in range(epochs):
        for xb, yb in loader:
            if len(yb) == 0:
                continue
            loss = nn.functional.cross_entropy(net(xb), yb)
            if anchor:
                loss = loss + mu / 2 * sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(yb), seen + len(yb)
    if hasattr(net, "remove_hooks"):
        net.remove_hooks()
    model.eval()
    return total / max(seen, 1)


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(dim=1) == y).float().mean())


def _state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- Flower apps
def _client_app(template: nn.Module, x: np.ndarray, y: np.ndarray, parts: list[np.ndarray], job: dict[str, Any]) -> Any:
    from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def local_train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)  # many clients share the machine's cores
        client = int(context.node_config["partition-id"])
        config = msg.content["config"]
        model = copy.deepcopy(template)
        global_state = msg.content["arrays"].to_torch_state_dict()
        model.load_state_dict(global_state)
        rows = parts[client]
        loss = _fit(model, torch.as_tensor(x[rows]), torch.as_tensor(y[rows]), epochs=job["local_epochs"],
                    batch_size=job["batch_size"], lr=job["lr"],
                    seed=job["seed"] * 100_003 + int(config["server-round"]) * 1009 + client,
                    mu=float(config.get("proximal-mu", 0.0)), noise_multiplier=job["noise"][client],
                    max_grad_norm=job["max_grad_norm"])
        local = _state(model)
        if job["compress"] == "int8":
            delta = {k: v - global_state[k].numpy() for k, v in local.items()}
            flat, scales = quantize_update(delta)
            arrays = ArrayRecord({"update_int8": Array(flat), "scales": Array(scales)})
        else:
            arrays = ArrayRecord({k: Array(v) for k, v in local.items()})
        metrics = MetricRecord({"num-examples": len(rows), "train_loss": loss})
        return Message(content=RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)

    return app


def _strategy(name: str, job: dict[str, Any], traffic: dict[int, dict[str, Any]]) -> Any:
    from flwr.app import Array, ArrayRecord
    from flwr.serverapp.strategy import FedAvg, FedProx

    base = FedProx if name == "fedprox" else FedAvg

    class Measured(base):  # type: ignore[misc, valid-type]
        """The chosen strategy, counting the bytes each round moves and decoding int8 updates."""

        def configure_train(self, server_round: int, arrays: Any, config: Any, grid: Any) -> Any:
            self._global = {k: v.numpy() for k, v in arrays.items()}
            messages = list(super().configure_train(server_round, arrays, config, grid))
            traffic[server_round] = {"download_bytes": len(messages) * arrays.count_bytes(),
                                     "clients": len(messages)}
            return messages

        def aggregate_train(self, server_round: int, replies: Any) -> Any:
            replies = list(replies)
            good = [m for m in replies if not m.has_error()]
            entry = traffic.setdefault(server_round, {})
            entry["failures"] = len(replies) - len(good)
            entry["errors"] = sorted({m.error.reason[:300] for m in replies if m.has_error()})[:3]
            entry["upload_bytes"] = sum(m.content["arrays"].count_bytes() for m in good)
            if job["compress"] != "int8" or not good:
                return super().aggregate_train(server_round, replies)
            # int8: weights = global + the example-weighted mean of the dequantized updates
            weights = np.array([float(m.content["metrics"]["num-examples"]) for m in good])
            total = {k: np.zeros_like(v, dtype=np.float32) for k, v in self._global.items()}
            for w, m in zip(weights / weights.sum(), good):
                update = dequantize_update(m.content["arrays"]["update_int8"].numpy(),
                                           m.content["arrays"]["scales"].numpy(), self._global)
                for k in total:
                    total[k] += w * update[k]
            arrays = ArrayRecord({k: Array((self._global[k] + total[k]).astype(self._global[k].dtype))
                                  for k in self._global})
            return arrays, self.train_metrics_aggr_fn([m.content for m in good], self.weighted_by_key)

    kwargs: dict[str, Any] = {"fraction_train": job["fraction"], "fraction_evaluate": 0.0,
                              "min_train_nodes": max(1, math.ceil(job["fraction"] * job["clients"])),
                              "min_available_nodes": job["clients"]}
    if name == "fedprox":
        kwargs["proximal_mu"] = job["mu"]
    return Measured(**kwargs)


def _server_app(template: nn.Module, strategy: Any, rounds: int, x_test: torch.Tensor, y_test: torch.Tensor,
                history: dict[int, float], progress: Callable[[int, int, str], None]) -> Any:
    from flwr.app import ArrayRecord, Context, MetricRecord
    from flwr.serverapp import Grid, ServerApp

    app = ServerApp()

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model = copy.deepcopy(template)
        model.load_state_dict(arrays.to_torch_state_dict())
        history[server_round] = _accuracy(model, x_test, y_test)
        progress(server_round, rounds, f"round {server_round}/{rounds}: accuracy {history[server_round]:.4f}")
        return MetricRecord({"accuracy": history[server_round]})

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy.start(grid=grid, initial_arrays=ArrayRecord(template.state_dict()), num_rounds=rounds,
                       evaluate_fn=evaluate)

    return app


# ----------------------------------------------------------------------------- the entry point
def _check(clients: int, rounds: int, strategy: str, alpha: float | None, compress: str, fraction: float,
           local_epochs: int, batch_size: int, lr: float, mu: float) -> None:
    from frugalml._validate import check_choice, check_positive_int

    check_positive_int(clients, "clients", maximum=10_000)
    check_positive_int(rounds, "rounds", maximum=100_000)
    check_positive_int(local_epochs, "local_epochs", maximum=10_000)
    check_positive_int(batch_size, "batch_size", maximum=65_536)
    check_choice(strategy, "strategy", STRATEGIES)
    check_choice(compress, "compress_updates", COMPRESSIONS)
    if clients < 2:
        raise InvalidArgumentError("clients", clients, "must be at least 2 for federated learning",
                                   "Use --clients 2 or more (centralised training is frugal train).")
    if alpha is not None and not (alpha > 0 and math.isfinite(alpha)):
        raise InvalidArgumentError("alpha", alpha, "must be a finite number > 0",
                                   "Use e.g. --alpha 0.5 (smaller = more skewed), or --iid.")
    if not 0 < fraction <= 1:
        raise InvalidArgumentError("fraction", fraction, "must be in (0, 1]", "Use e.g. --fraction 1.0 (every client).")
    if not (lr > 0 and math.isfinite(lr)):
        raise InvalidArgumentError("lr", lr, "must be a finite number > 0", "Use e.g. --lr 0.05.")
    if not mu >= 0:
        raise InvalidArgumentError("mu", mu, "must be >= 0", "Use e.g. --mu 0.01 (FedProx's proximal weight).")


def simulate(*, model: str = "zoo:digits-mlp", data: str = "zoo:digits", label_column: str | None = None,
             clients: int = 20, rounds: int = 50, strategy: str = "fedavg", alpha: float | None = 0.5,
             local_epochs: int = 2, batch_size: int = 16, lr: float = 0.05, mu: float = 0.01, fraction: float = 1.0,
             compress_updates: str = "none", privacy: Any = None, centralized: bool = True, seed: int = 0,
             store: str | None = None, record: bool = True,
             on_progress: Callable[[int, int, str], None] | None = None) -> FederatedResult:
    """Simulate federated training of ``model`` (a PyTorch classifier of tensors, trained from scratch) on the
    training rows of ``data`` spread over ``clients``; see the module docstring. ``alpha=None`` is IID.
    ``privacy`` is a :class:`~frugalml.train.PrivacySettings`. Recorded as a ``federated`` run."""
    from frugalml.models import load_model
    from frugalml.store import Measurement, fail_on_error
    from frugalml.train._config import require
    from frugalml.train._finetune import encode_labels, reinitialise

    _check(clients, rounds, strategy, alpha, compress_updates, fraction, local_epochs, batch_size, lr, mu)
    require("flwr", "federated")
    if privacy is not None:
        from frugalml.train._config import require

        privacy = privacy.checked()
        require("opacus", "train")
    progress = on_progress or (lambda done, total, message: None)
    started = time.perf_counter()
    from frugalml.datasets import load_dataset

    dataset = load_dataset(data, label_column=label_column)
    if dataset.kind != "tensor" or dataset.label_column is None:
        raise DataError("data", data, "federated simulation needs numeric features and a label column",
                        "Use a tabular dataset such as zoo:digits (with --label-column).")
    handle = load_model(model)
    if handle.module is None or handle.input_spec.kind != "tensor":
        raise InvalidArgumentError("model", model, "federated simulation trains a PyTorch classifier of tensors",
                                   "Use zoo:digits-mlp or zoo:digits-cnn.")
    y_all, classes = encode_labels(dataset.frame[dataset.label_column].to_numpy(), dataset.label_column)
    x_all = dataset.features().reshape(len(dataset), *(handle.input_spec.item_shape or (-1,))).astype(np.float32)
    is_test = dataset.is_test() if "split" in dataset.frame.columns \
        else np.random.default_rng(seed).random(len(dataset)) < 0.2
    train_rows, test_rows = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    x, y = x_all[train_rows], y_all[train_rows]
    x_test, y_test = torch.as_tensor(x_all[test_rows]), torch.as_tensor(y_all[test_rows])
    parts = dirichlet_partition(y, clients, alpha=alpha, seed=seed)
    torch.manual_seed(seed)
    template = reinitialise(copy.deepcopy(handle.module))  # from scratch: the zoo weights saw these very rows
    with torch.no_grad():
        if template.eval()(torch.as_tensor(x[:2])).shape[-1] != len(classes):
            raise InvalidArgumentError("model", model, f"does not output {len(classes)} classes",
                                       "Use a model with one output per class.")
    sizes = [len(p) for p in parts]
    partition = {"clients": clients, "alpha": alpha, "rows_min": min(sizes), "rows_median": float(np.median(sizes)),
                 "rows_max": max(sizes), "classes_per_client_median": float(np.median([len(np.unique(y[p]))
                                                                                      for p in parts])),
                 "train_rows": len(y), "test_rows": len(test_rows)}
    noise: list[float | None] = [None] * clients
    privacy_record = None
    if privacy is not None:
        from frugalml.train._privacy import make_private_ready

        replaced: list[str] = []
        template = make_private_ready(template, "tensor", "full", [], replaced)  # fails here, not in every client
        partition["replaced_for_dp"] = replaced
        privacy_record = _client_privacy(privacy, parts, rounds, local_epochs, batch_size, noise)
    job = {"clients": clients, "local_epochs": local_epochs, "batch_size": batch_size, "lr": lr, "mu": mu,
           "fraction": fraction, "compress": compress_updates, "seed": seed, "noise": noise,
           "max_grad_norm": privacy.max_grad_norm if privacy is not None else 1.0}
    config = {"model": model, "data": data, "clients": clients, "rounds": rounds, "strategy": strategy,
              "alpha": alpha, "local_epochs": local_epochs, "batch_size": batch_size, "lr": lr,
              "mu": mu if strategy == "fedprox" else None, "fraction": fraction, "compress_updates": compress_updates,
              "privacy": privacy.model_dump() if privacy is not None else None, "seed": seed,
              "optimizer": "SGD momentum 0.9"}
    run = None
    if record:
        from frugalml.measure.env import fingerprint
        from frugalml.store import open_store

        run = open_store(store).start_run("federated", name=f"{model} {strategy} x{clients}", config=config,
                                          env=fingerprint())
    with fail_on_error(run):
        traffic: dict[int, dict[str, Any]] = {}
        accuracy: dict[int, float] = {}
        _run_flower(template, x, y, parts, job, strategy, rounds, x_test, y_test, traffic, accuracy, clients, progress)
        if len(accuracy) < rounds + 1:
            raise InvalidArgumentError("simulation", f"{len(accuracy) - 1} of {rounds} rounds",
                                       "the Flower simulation ended early" + _errors(traffic),
                                       "Run with --debug to see Flower's log.")
        failures = sum(t.get("failures", 0) for t in traffic.values())
        lost = [r for r, t in sorted(traffic.items()) if t.get("failures") and t["failures"] >= t.get("clients", 0)]
        if lost:
            raise InvalidArgumentError("simulation", f"round {lost[0]}", "every client failed" + _errors(traffic),
                                       "Fix the client error above (run with --debug for Flower's log).")
        notes = []
        if failures:
            notes.append(f"{failures} client replies failed{_errors(traffic)}; their rounds averaged the others")
            log.warning(notes[-1])
        from flwr.app import ArrayRecord

        float_bytes = ArrayRecord(template.state_dict()).count_bytes()  # one float32 update, counted as Flower does
        rounds_out = [{"round": r, "accuracy": accuracy[r], **{k: v for k, v in traffic.get(r, {}).items()
                                                                if k != "errors"}} for r in range(1, rounds + 1)]
        central = None
        if centralized:
            progress(rounds, rounds, "centralised reference")
            reference = copy.deepcopy(template)
            _fit(reference, torch.as_tensor(x), torch.as_tensor(y), epochs=rounds * local_epochs,
                 batch_size=batch_size, lr=lr, seed=seed)
            central = _accuracy(reference, x_test, y_test)
        result = FederatedResult(
            config=config, rounds=rounds_out, final_accuracy=accuracy[rounds], centralized_accuracy=central,
            upload_bytes=sum(r.get("upload_bytes", 0) for r in rounds_out),
            download_bytes=sum(r.get("download_bytes", 0) for r in rounds_out),
            upload_bytes_float32=float_bytes * sum(r.get("clients", 0) - r.get("failures", 0) for r in rounds_out),
            partition=partition, privacy=privacy_record, failures=failures, seconds=time.perf_counter() - started,
            notes=notes)
        if run is not None:
            result.run_id = run.id
            measurements = [Measurement("final_accuracy", result.final_accuracy, "fraction", source="test split"),
                            Measurement("upload_bytes", result.upload_bytes, "bytes", source="flower count_bytes"),
                            Measurement("download_bytes", result.download_bytes, "bytes", source="flower count_bytes")]
            if central is not None:
                measurements.append(Measurement("centralized_accuracy", central, "fraction", source="test split"))
            if privacy_record is not None:
                measurements.append(Measurement("epsilon", privacy_record["epsilon_max"], "epsilon",
                                                source=f"opacus rdp, per client, delta {privacy_record['delta']:.3g}"))
            run.finish(result=result.to_dict(), measurements=measurements)
    log.info("federated %s: accuracy %.4f after %d rounds (centralised %s), %d bytes up", strategy,
             result.final_accuracy, rounds, "n/a" if central is None else f"{central:.4f}", result.upload_bytes)
    return result


def _errors(traffic: dict[int, dict[str, Any]]) -> str:
    errors = sorted({e for t in traffic.values() for e in t.get("errors", [])})
    return f" (client errors: {'; '.join(errors[:2])})" if errors else ""


def _client_privacy(privacy: Any, parts: list[np.ndarray], rounds: int, local_epochs: int, batch_size: int,
                    noise: list[float | None]) -> dict[str, Any]:
    """Set each client's noise multiplier for its planned steps; the record of what each client's rows get."""
    from opacus.accountants import RDPAccountant

    from frugalml.train._privacy import check_delta, default_delta, noise_for

    smallest = min(len(p) for p in parts)
    delta = privacy.delta if privacy.delta is not None else default_delta(smallest)
    warning = check_delta(delta, smallest)
    epsilons = []
    for client, rows in enumerate(parts):
        batches = math.ceil(len(rows) / batch_size)  # Opacus samples each row with rate 1 / batches per epoch
        rate, steps = 1.0 / batches, rounds * local_epochs * batches
        noise[client] = noise_for(epsilon=privacy.epsilon, delta=delta, sample_rate=rate, steps=steps,
                                  accountant="rdp")
        accountant = RDPAccountant()
        accountant.history = [(noise[client], rate, steps)]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the")
            epsilons.append(float(accountant.get_epsilon(delta)))
    return {"epsilon_target": privacy.epsilon, "epsilon_max": max(epsilons), "delta": delta, "accountant": "rdp",
            "max_grad_norm": privacy.max_grad_norm, "noise_multiplier_min": min(n for n in noise if n is not None),
            "noise_multiplier_max": max(n for n in noise if n is not None), "unit": "one row of one client",
            "scope": "each client's rows, against every update it sends over all rounds (assumes it takes part "
                     "in every round)", "warnings": [warning] if warning else []}


def _run_flower(template: nn.Module, x: np.ndarray, y: np.ndarray, parts: list[np.ndarray], job: dict[str, Any],
                strategy: str, rounds: int, x_test: torch.Tensor, y_test: torch.Tensor,
                traffic: dict[int, dict[str, Any]], accuracy: dict[int, float], clients: int,
                progress: Callable[[int, int, str], None]) -> None:
    from flwr.simulation import run_simulation
    flwr_logger = logging.getLogger("flwr")
    level = flwr_logger.level
    if not log.isEnabledFor(logging.DEBUG):
        # Flower logs every round at INFO (progress shows rounds instead) and warns at WARNING that
        # run_simulation is deprecated in favour of the `flwr run` CLI, which needs a packaged Flower app;
        # in-process simulation is what a library call needs. Client errors (ERROR) still show.
        flwr_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Tip: In future versions of Ray")
            run_simulation(
                server_app=_server_app(template, _strategy(strategy, job, traffic), rounds, x_test, y_test, accuracy,
                                       progress),
                client_app=_client_app(template, x, y, parts, job), num_supernodes=clients,
                backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                "init_args": {"num_cpus": os.cpu_count() or 1, "log_to_driver": False,
                                              "logging_level": logging.ERROR}})
    finally:
        flwr_logger.setLevel(level)
