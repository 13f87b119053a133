"""`frugal train` and `frugal federated simulate`: parse options, call frugalml.train, render the results."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from frugalml._json import dumps
from frugalml._units import format_bytes, format_joules
from frugalml.cli._app import app, console, err_console

__all__ = ["federated_app"]

federated_app = typer.Typer(help="Federated learning with Flower: simulate clients on one machine.",
                            no_args_is_help=True)
app.add_typer(federated_app, name="federated")

_STORE_HELP = "Run store URL (default $FRUGAL_STORE or sqlite:///.frugal/runs.db)."


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=True)


def _privacy(dp: bool, epsilon: float | None, delta: float | None, max_grad_norm: float | None,
             accountant: str | None) -> dict | None:
    """The privacy options given on the command line, as a mapping that updates the config file's."""
    from frugalml.errors import InvalidArgumentError

    given = {"epsilon": epsilon, "delta": delta, "max_grad_norm": max_grad_norm, "accountant": accountant}
    if not dp:
        named = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
        if named:
            raise InvalidArgumentError(named[0], "given without --dp", "only applies to private training",
                                       "Add --dp to train with differential privacy, or drop the option.")
        return None
    return {k: v for k, v in given.items() if v is not None}


def _require_epsilon(privacy: dict | None) -> None:
    from frugalml.errors import InvalidArgumentError

    if privacy is not None and privacy.get("epsilon") is None:
        raise InvalidArgumentError("--epsilon", None, "is required with --dp",
                                   "Add e.g. --epsilon 3 (smaller is more private).")


def _show_privacy_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Print the PrivacyWarnings a run raised (delta >= 1/N): allowed, but never silently."""
    from frugalml.train import PrivacyWarning

    for w in caught:
        if issubclass(w.category, PrivacyWarning):
            err_console.print(f"[yellow]warning:[/] {w.message}", highlight=False, soft_wrap=True)


def _seconds(value: float) -> str:
    # a one-epoch MLP trains in tens of milliseconds: one decimal would print "0.0 s"
    return f"{value:,.1f} s" if value >= 10 else f"{value:.3g} s"


@app.command("train")
def train_command(
    config: Path = typer.Option(None, "--config", "-c", help="Training config (YAML; see docs/train.md). Options "
                                "below override its fields."),
    model: str = typer.Option(None, "--model", help="zoo:minilm, a Hugging Face / sentence-transformers directory, "
                              "or zoo:digits-mlp / zoo:digits-cnn (default zoo:minilm)."),
    data: str = typer.Option(None, "--data", help="zoo:NAME or a CSV / Parquet / JSONL file (default "
                             "zoo:stdlib-docs)."),
    text_column: str = typer.Option(None, "--text-column", help="The text column (text models)."),
    label_column: str = typer.Option(None, "--label-column", help="The class column."),
    method: str = typer.Option(None, "--method", help="full, lora or head (default lora)."),
    init: str = typer.Option(None, "--init", help="pretrained (default) or scratch."),
    epochs: int = typer.Option(None, "--epochs", help="Most epochs (early stopping may end sooner; default 3)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Rows per step (default 32)."),
    lr: float = typer.Option(None, "--lr", help="Learning rate (default by method and model kind)."),
    max_train_items: int = typer.Option(None, "--max-train-items", help="Cap on training rows (0 = all)."),
    patience: int = typer.Option(None, "--patience", help="Epochs without validation improvement before stopping."),
    seed: int = typer.Option(None, "--seed", help="Seed (default 0)."),
    device: str = typer.Option(None, "--device", help="auto (default), cpu or cuda."),
    dp: bool = typer.Option(False, "--dp", help="Train with differential privacy (DP-SGD, Opacus)."),
    epsilon: float = typer.Option(None, "--epsilon", help="Privacy budget epsilon (with --dp)."),
    delta: float = typer.Option(None, "--delta", help="Privacy delta (with --dp; default 1/(10 x training rows))."),
    max_grad_norm: float = typer.Option(None, "--max-grad-norm", help="Per-sample gradient clipping norm (with --dp; "
                                        "default 1.0)."),
    accountant: str = typer.Option(None, "--accountant", help="prv (default), rdp or gdp (with --dp)."),
    out: Path = typer.Option(None, "--out", "-o", help="Save the trained model (with its model card) here."),
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fine-tune a model in full, with LoRA adapters or head only, optionally with differential privacy."""
    from frugalml.config import read_yaml
    from frugalml.train import load_train_config, train

    privacy = _privacy(dp, epsilon, delta, max_grad_norm, accountant)
    if privacy is not None and "epsilon" not in privacy:  # the config file may hold it
        raw = read_yaml(config) if config is not None else None
        file_privacy = raw.get("privacy") if isinstance(raw, dict) else None
        _require_epsilon({**(file_privacy if isinstance(file_privacy, dict) else {}), **privacy})
    settings = load_train_config(config, model=model, data=data, text_column=text_column, label_column=label_column,
                                 method=method, init=init, epochs=epochs, batch_size=batch_size, lr=lr,
                                 max_train_items=max_train_items, patience=patience, seed=seed, device=device,
                                 privacy=privacy or None, out=str(out) if out is not None else None, store=store)
    with _bar() as bar, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = bar.add_task("loading", total=None)
        result = train(settings, on_progress=lambda done, total, message: bar.update(task, completed=done,
                                                                                      total=total, description=message))
    _show_privacy_warnings(caught)
    if as_json:
        typer.echo(dumps(result.to_dict()))
        return
    table = Table(title=f"{settings.method} training of {settings.model} on {settings.data} "
                  f"(run {result.run_id})", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [("test accuracy", f"{result.test_accuracy:.4f}"),
            ("test accuracy before training", "n/a" if result.baseline_test_accuracy is None
             else f"{result.baseline_test_accuracy:.4f}"),
            ("best validation accuracy", f"{result.validation_accuracy:.4f} (epoch {result.best_epoch} of "
             f"{result.epochs_run}{', stopped early' if result.stopped_early else ''})"),
            ("trainable parameters", f"{result.params_trainable:,} of {result.params_total:,} "
             f"({result.trainable_fraction:.2%})"),
            ("rows (train / validation / test)", f"{result.train_items:,} / {result.validation_items:,} / "
             f"{result.test_items:,}"),
            ("training time", f"{_seconds(result.train_seconds)} on {result.device}"),
            ("peak memory", f"{format_bytes(result.peak_memory_bytes)} ({result.memory_source})"),
            ("energy", f"{format_joules(result.energy_j)} ({result.energy_source})")]
    if result.adapter_bytes:
        rows.append(("LoRA adapter size", format_bytes(result.adapter_bytes)))
    if result.privacy is not None:
        p = result.privacy
        rows += [("privacy spent", f"epsilon {p['epsilon_spent']:.3g} (target {p['epsilon_target']:g}), delta "
                  f"{p['delta']:.3g}, {p['accountant']} accountant"),
                 ("noise multiplier / clipping", f"{p['noise_multiplier']:.3g} / {p['max_grad_norm']:g}")]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for note in result.frozen:
        console.print(f"frozen: {note}", highlight=False)
    for note in result.replaced_layers:
        console.print(f"replaced for DP: {note}", highlight=False)
    if result.out_dir:
        console.print(f"saved {result.out_dir} ({format_bytes(result.model_bytes)} of weights, MODEL_CARD.md)")


@federated_app.command("simulate")
def simulate_command(
    clients: int = typer.Option(20, "--clients", help="Number of simulated clients."),
    rounds: int = typer.Option(50, "--rounds", help="Federated rounds."),
    strategy: str = typer.Option("fedavg", "--strategy", help="fedavg or fedprox."),
    alpha: float = typer.Option(0.5, "--alpha", help="Dirichlet concentration of the non-IID split (smaller = each "
                                "client sees fewer classes)."),
    iid: bool = typer.Option(False, "--iid", help="Split the rows IID instead (ignores --alpha)."),
    model: str = typer.Option("zoo:digits-mlp", "--model", help="zoo:digits-mlp or zoo:digits-cnn (trained from "
                              "scratch)."),
    data: str = typer.Option("zoo:digits", "--data", help="zoo:NAME or a CSV with numeric features."),
    label_column: str = typer.Option(None, "--label-column", help="The class column (zoo datasets know theirs)."),
    local_epochs: int = typer.Option(2, "--local-epochs", help="Epochs each client trains per round."),
    batch_size: int = typer.Option(16, "--batch-size", help="Client batch size."),
    lr: float = typer.Option(0.05, "--lr", help="SGD learning rate (momentum 0.9)."),
    mu: float = typer.Option(0.01, "--mu", help="FedProx proximal weight."),
    fraction: float = typer.Option(1.0, "--fraction", help="Fraction of clients sampled each round."),
    compress_updates: str = typer.Option("none", "--compress-updates", help="none or int8 (client updates)."),
    dp: bool = typer.Option(False, "--dp", help="Each client trains with DP-SGD (Opacus)."),
    epsilon: float = typer.Option(None, "--epsilon", help="Per-client privacy budget over all rounds (with --dp)."),
    delta: float = typer.Option(None, "--delta", help="Privacy delta (with --dp; default 1/(10 x smallest client))."),
    max_grad_norm: float = typer.Option(None, "--max-grad-norm", help="Per-sample clipping norm (with --dp)."),
    no_centralized: bool = typer.Option(False, "--no-centralized", help="Skip the centralised reference."),
    seed: int = typer.Option(0, "--seed", help="Seed (partition, initial weights, shuffling)."),
    store: str = typer.Option(None, "--store", help=_STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Simulate federated training (Flower + Ray) and compare it with centralised training."""
    from frugalml.train import PrivacySettings, simulate

    settings = _privacy(dp, epsilon, delta, max_grad_norm, None)
    _require_epsilon(settings)
    with _bar() as bar, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = bar.add_task("starting Flower simulation", total=rounds)
        result = simulate(model=model, data=data, label_column=label_column, clients=clients, rounds=rounds,
                          strategy=strategy, alpha=None if iid else alpha, local_epochs=local_epochs,
                          batch_size=batch_size, lr=lr, mu=mu, fraction=fraction, compress_updates=compress_updates,
                          privacy=PrivacySettings(**settings) if settings is not None else None,
                          centralized=not no_centralized, seed=seed, store=store,
                          on_progress=lambda done, total, message: bar.update(task, completed=done,
                                                                              description=message))
    _show_privacy_warnings(caught)
    if as_json:
        typer.echo(dumps(result.to_dict()))
        return
    p = result.partition
    console.print(f"{clients} clients ({'IID' if iid else f'Dirichlet alpha {alpha:g}'}): {p['rows_min']}-"
                  f"{p['rows_max']} rows each (median {p['rows_median']:g}), median "
                  f"{p['classes_per_client_median']:g} classes per client", highlight=False)
    table = Table(title=f"{strategy} on {data}, {rounds} rounds (run {result.run_id})", title_justify="left")
    for column in ("round", "accuracy", "uploaded", "downloaded", "failed"):
        table.add_column(column, justify="right")
    shown = result.rounds if len(result.rounds) <= 12 else result.rounds[:5] + [None] + result.rounds[-5:]
    for r in shown:
        if r is None:
            table.add_row("...", "", "", "", "")
            continue
        table.add_row(str(r["round"]), f"{r['accuracy']:.4f}", f"{r.get('upload_bytes', 0) / 1e3:,.1f} kB",
                      f"{r.get('download_bytes', 0) / 1e3:,.1f} kB", str(r.get("failures", 0)))
    console.print(table)
    gap = result.gap
    console.print(f"final accuracy {result.final_accuracy:.4f}" + (
        f"; centralised {result.centralized_accuracy:.4f} (federated {abs(100 * gap):.2f} points "
        f"{'below' if gap > 0 else 'above'})" if gap is not None else ""), highlight=False)
    ratio = result.upload_bytes_float32 / result.upload_bytes if result.upload_bytes else float("nan")
    console.print(f"uploaded {result.upload_bytes / 1e6:,.2f} MB ({ratio:.2f}x less than float32 updates), "
                  f"downloaded {result.download_bytes / 1e6:,.2f} MB in {result.seconds:,.0f} s", highlight=False)
    if result.privacy is not None:
        q = result.privacy
        console.print(f"privacy: each client's rows (epsilon {q['epsilon_max']:.3g}, delta {q['delta']:.3g})-DP, "
                      f"{q['accountant']} accountant, noise {q['noise_multiplier_min']:.3g}-"
                      f"{q['noise_multiplier_max']:.3g}", highlight=False)
