"""train(): full / head / LoRA on digits and on a small text task, saved artifacts, the store record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from frugalml.errors import DataError, InvalidArgumentError
from frugalml.models import load_model
from frugalml.store import open_store
from frugalml.train import train
from frugalml.train._finetune import encode_labels

DIGITS = {"model": "zoo:digits-mlp", "data": "zoo:digits", "init": "scratch", "seed": 0}


@pytest.fixture(scope="module")
def text_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """180 stdlib-docs sentences from three module families, with their train/test split."""
    from frugalml.datasets import load_dataset

    frame = load_dataset("zoo:stdlib-docs").frame
    parts = [frame[frame.source == family].sort_values("text").head(60) for family in ("network", "text", "system")]
    path = tmp_path_factory.mktemp("text") / "docs.csv"
    import pandas as pd

    pd.concat(parts)[["text", "source", "split"]].to_csv(path, index=False)
    return path


def test_full_training_learns_and_records_the_run(sqlite_url: str) -> None:
    result = train(**DIGITS, method="full", epochs=15, patience=15, store=sqlite_url)
    assert result.test_accuracy > 0.9 and result.baseline_test_accuracy is None
    assert result.params_trainable == result.params_total == 17226 and result.trainable_fraction == 1.0
    assert len(result.history) == result.epochs_run == 15 and result.best_epoch >= 1
    assert result.train_seconds > 0 and result.peak_memory_bytes > 0 and result.energy_j >= 0
    run = open_store(sqlite_url).get_run(result.run_id)
    names = {m.name for m in run.measurements}
    assert run.kind == "train" and run.status == "succeeded"
    assert {"test_accuracy", "train_time", "train_energy", "run_energy", "trainable_fraction"} <= names
    from frugalml.cli._runs import _headline
    from frugalml.report.html import render_run

    page = render_run(run, plotly="/static/plotly.min.js")
    assert "fig-train-epochs" in page and "Per epoch" in page
    assert _headline(run).startswith("full: accuracy 0.9")


def test_training_is_seeded() -> None:
    a = train(**DIGITS, method="full", epochs=3, record=False)
    b = train(**DIGITS, method="full", epochs=3, record=False)
    assert a.history == [{**h, "seconds": b.history[i]["seconds"]} for i, h in enumerate(a.history)] or \
        [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.test_accuracy == b.test_accuracy


def test_head_and_lora_train_a_fraction_and_save_loadable_artifacts(tmp_path: Path) -> None:
    head = train(**{**DIGITS, "init": "pretrained"}, method="head", epochs=2, record=False)
    assert head.params_trainable == 64 * 10 + 10 and head.baseline_test_accuracy > 0.9
    lora = train(**{**DIGITS, "model": "zoo:digits-cnn"}, method="lora", epochs=4, record=False,
                 out=str(tmp_path / "cnn"))
    assert 0 < lora.trainable_fraction < 0.5 and lora.adapter_bytes > 0
    assert any("lora" in f for f in lora.frozen)
    loaded = load_model(tmp_path / "cnn")  # hash-checked artifact, merged weights, no peft needed to load
    from frugalml.datasets import load_dataset

    test = load_dataset("zoo:digits", split="test")
    predicted = loaded.predict(test.features().reshape(-1, 1, 8, 8)).argmax(axis=1)
    assert abs(float((predicted == test.labels()).mean()) - lora.test_accuracy) < 1e-9
    card = (tmp_path / "cnn" / "MODEL_CARD.md").read_text()
    assert "without** differential privacy" in card and "adapter" in card
    assert (tmp_path / "cnn" / "adapter" / "adapter_config.json").is_file()


def test_text_lora_and_full_on_a_small_task(text_csv: Path, tmp_path: Path) -> None:
    common = {"data": str(text_csv), "label_column": "source", "epochs": 2, "max_seq_len": 48, "record": False}
    lora = train(method="lora", out=str(tmp_path / "lora"), **common)
    assert lora.classes == ["network", "system", "text"]
    assert lora.trainable_fraction < 0.02 and lora.params_total > 22_000_000
    assert lora.test_accuracy is not None and lora.test_accuracy >= lora.baseline_test_accuracy - 0.1
    handle = load_model(tmp_path / "lora")  # an ordinary Hugging Face classifier artifact
    assert handle.task == "classification" and handle.format == "hf"
    import pandas as pd

    frame = pd.read_csv(text_csv)
    test = frame[frame.split == "test"]
    predicted = handle.predict(test.text.tolist()).argmax(axis=1)
    truth = np.searchsorted(lora.classes, test.source.to_numpy())
    assert abs(float((predicted == truth).mean()) - lora.test_accuracy) < 1e-9  # merged == trained
    # The class names travel with it: its own text labels evaluate as they trained
    assert handle.class_names == lora.classes
    from frugalml.evaluate import evaluate

    ev = evaluate(handle, str(text_csv), label_column="source", seq_len=48, n_boot=10)
    assert ev.n_items == len(test) and ev.overall["accuracy"].value == pytest.approx(lora.test_accuracy)
    full = train(method="full", epochs=1, data=str(text_csv), label_column="source", max_seq_len=48, record=False)
    assert full.trainable_fraction == 1.0 and full.params_trainable > 100 * lora.params_trainable


def test_labels() -> None:
    y, classes = encode_labels(np.array([3, 0, 3, 1]), "label")
    assert y.tolist() == [3, 0, 3, 1] and classes == ["0", "1", "2", "3"]  # integer labels keep their index
    y, classes = encode_labels(np.array(["b", "a", "b"]), "label")
    assert y.tolist() == [1, 0, 1] and classes == ["a", "b"]
    with pytest.raises(DataError, match="without a label"):
        encode_labels(np.array([1.0, np.nan]), "label")


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="outputs 10 classes"):
        train(model="zoo:digits-mlp", data=str(_two_class_csv(tmp_path)), label_column="label", record=False)
    if not torch.cuda.is_available():
        with pytest.raises(InvalidArgumentError, match="no CUDA GPU"):
            train(**DIGITS, device="cuda", record=False)
    with pytest.raises(DataError, match="no such built-in dataset"):
        train(**{**DIGITS, "data": "zoo:nope"}, record=False)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "f").write_text("x")
    with pytest.raises(InvalidArgumentError, match="not an empty directory"):
        train(**DIGITS, out=str(tmp_path / "taken"), record=False)
    with pytest.raises(InvalidArgumentError, match="epsilon"):
        train(**DIGITS, privacy={"epsilon": -1}, record=False)
    model = nn.Sequential(nn.Linear(64, 10))
    with pytest.raises(InvalidArgumentError, match="no layer besides its output layer"):
        train(module=model, example_inputs=torch.zeros(2, 64), data="zoo:digits", method="lora", record=False)


def _two_class_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "two.csv"
    import pandas as pd

    frame = pd.DataFrame(rng.random((40, 64)).astype(np.float32), columns=[f"px{i}" for i in range(64)])
    frame["label"] = np.arange(40) % 2
    frame.to_csv(path, index=False)
    return path


@pytest.mark.cuda
def test_training_on_cuda_measures_the_allocator_peak() -> None:
    import frugalml

    result = frugalml.train(**DIGITS, method="full", epochs=3, device="cuda", record=False)
    assert result.device == "cuda" and result.test_accuracy > 0.5
    assert result.memory_source == "cuda max_memory_allocated" and result.peak_memory_bytes > 0


def test_unknown_lora_targets_name_the_layers_there_are() -> None:
    with pytest.raises(InvalidArgumentError, match=r"lora.target_modules=\['nope'\].*Name layers the model has"):
        train(**DIGITS, method="lora", lora={"target_modules": ["nope"]}, epochs=1, record=False)
