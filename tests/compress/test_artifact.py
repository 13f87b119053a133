"""Artifacts: round trips for every format, hash verification, encryption, atomic writes, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from frugalml import load_model
from frugalml.compress import (DropLayers, LowRank, PruneStructured, QuantizeDynamic, compress, read_key_file,
                               save_model)
from frugalml.errors import InvalidArgumentError, ModelLoadError


def _same(a, b, items, **kw) -> None:
    np.testing.assert_allclose(a.predict(items, **kw), b.predict(items, **kw), atol=1e-5)


@pytest.mark.parametrize("recipe", [
    [PruneStructured(amount=0.5), LowRank(energy=0.8)],
    [PruneStructured(amount=0.25), QuantizeDynamic()],
    [QuantizeDynamic(backend="onnxruntime")],
])
def test_round_trip(digits_mlp, tmp_path: Path, recipe) -> None:
    small = compress(digits_mlp, recipe)
    out = save_model(small, tmp_path / "a")
    loaded = load_model(out)
    _same(small, loaded, digits_mlp.example_inputs[:16])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"]["steps"][0]["technique"] == recipe[0].technique
    assert set(manifest["files"]) == {p.name for p in out.iterdir() if p.name != "manifest.json"}
    assert manifest["source"]["sha256"] and manifest["frugalml_version"]


def test_text_artifact_round_trip(minilm, tmp_path: Path) -> None:
    texts = ["The cat sat.", "Open the file and return a stream of bytes."]
    small = compress(minilm, [DropLayers(keep=2), PruneStructured(amount=0.5, target="ffn")], data=texts * 4,
                     seq_len=16)
    out = save_model(small, tmp_path / "m")
    loaded = load_model(out)
    assert loaded.format == "sentence-transformers" and loaded.tokenizer is not None
    _same(small, loaded, texts)
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()


def test_tampered_and_incomplete_artifacts_are_refused(digits_mlp, tmp_path: Path) -> None:
    out = save_model(compress(digits_mlp, [QuantizeDynamic()]), tmp_path / "a")
    weights = out / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="does not match the sha256"):
        load_model(out)
    weights.unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(out)


def test_extra_file_is_refused(digits_mlp, tmp_path: Path) -> None:
    out = save_model(compress(digits_mlp, [QuantizeDynamic()]), tmp_path / "a")
    (out / "evil.py").write_text("print('hi')")
    with pytest.raises(ModelLoadError, match="not in manifest"):
        load_model(out)


def test_encryption(digits_mlp, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(os.urandom(32).hex())
    key = read_key_file(key_file)
    small = compress(digits_mlp, [PruneStructured(amount=0.5)])
    out = save_model(small, tmp_path / "enc", encrypt_key=key)
    assert b"__metadata__" not in (out / "model.safetensors").read_bytes()[:200]  # not a plain safetensors header
    with pytest.raises(ModelLoadError, match="is encrypted"):
        load_model(out)
    with pytest.raises(ModelLoadError, match="not the key"):
        load_model(out, encrypt_key=os.urandom(32))
    _same(small, load_model(out, encrypt_key=key), digits_mlp.example_inputs[:8])
    from frugalml.compress.artifact import _DECRYPTED, remove_decrypted

    plain = _DECRYPTED[-1]  # the decrypted copy: private to this user, deleted on request (and at exit)
    assert (plain / "model.safetensors").is_file() and plain.stat().st_mode & 0o077 == 0
    remove_decrypted()
    assert not plain.exists() and _DECRYPTED == []
    bad = tmp_path / "short"
    bad.write_bytes(b"123")
    with pytest.raises(InvalidArgumentError, match="32-byte key"):
        read_key_file(bad)


def test_encrypted_artifact_opens_with_the_key_file_from_the_environment(digits_mlp, tmp_path: Path,
                                                                         monkeypatch, capsys) -> None:
    # every command loads models by spec, so the key reaches them through $FRUGAL_KEY_FILE, which
    # `frugal --key-file` sets (and serve's worker processes inherit)
    from frugalml.cli import main
    from frugalml.compress.artifact import KEY_FILE_ENV

    key_file, wrong = tmp_path / "key", tmp_path / "wrong"
    key_file.write_bytes(os.urandom(32))
    wrong.write_bytes(os.urandom(32))
    small = compress(digits_mlp, [PruneStructured(amount=0.5)])
    out = save_model(small, tmp_path / "enc", encrypt_key=read_key_file(key_file))
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)  # restored after the test, whatever main() sets
    with pytest.raises(ModelLoadError, match="is encrypted.*frugal --key-file KEY"):
        load_model(out)
    monkeypatch.setenv(KEY_FILE_ENV, str(wrong))
    with pytest.raises(ModelLoadError, match=f"^{KEY_FILE_ENV}=.*wrong.*is not the key"):
        load_model(out)
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(InvalidArgumentError, match=f"^{KEY_FILE_ENV}=.*cannot be read"):
        load_model(out)
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    _same(small, load_model(out), digits_mlp.example_inputs[:8])
    # an explicit key wins over the environment's
    monkeypatch.setenv(KEY_FILE_ENV, str(wrong))
    _same(small, load_model(out, encrypt_key=read_key_file(key_file)), digits_mlp.example_inputs[:8])
    monkeypatch.delenv(KEY_FILE_ENV)
    for argv, code, fragment in (
            (["evaluate", str(out)], 2, "frugal --key-file KEY"),
            (["--key-file", str(tmp_path / "missing"), "evaluate", str(out)], 2, "--key-file="),
            (["--key-file", str(key_file), "evaluate", str(out), "--json"], 0, '"accuracy"')):
        with pytest.raises(SystemExit) as info:
            main(argv)
        captured = capsys.readouterr()
        assert (info.value.code or 0) == code and fragment in captured.out + captured.err
        assert "Traceback" not in captured.err


def test_existing_dir_and_custom_module(digits_mlp, tmp_path: Path) -> None:
    out = save_model(compress(digits_mlp, [QuantizeDynamic()]), tmp_path / "a")
    with pytest.raises(InvalidArgumentError, match="not empty"):
        save_model(compress(digits_mlp, [QuantizeDynamic()]), out)
    custom = load_model(torch.nn.Sequential(torch.nn.Linear(4, 3)), example_inputs=torch.randn(2, 4))
    with pytest.raises(InvalidArgumentError, match="export_onnx"):
        save_model(compress(custom, [LowRank(energy=0.5)]), tmp_path / "custom")
    assert not (tmp_path / "custom").exists()  # nothing half-written
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_compress(tmp_path: Path, capsys, sqlite_url: str) -> None:
    from frugalml.cli import main
    from frugalml.store import open_store

    recipe = tmp_path / "r.yaml"
    recipe.write_text("frugalml_recipe: 1\nsteps:\n  - technique: prune_structured\n    amount: 0.5\n"
                      "  - technique: distill\n    epochs: 2\n    lr: 0.001\n  - technique: quantize_dynamic\n")
    with pytest.raises(SystemExit) as info:
        main(["compress", "zoo:digits-mlp", "--recipe", str(recipe), "-o", str(tmp_path / "out"), "--json",
              "--store", sqlite_url])
    assert info.value.code in (0, None)
    doc = json.loads(capsys.readouterr().out)
    assert doc["metrics"]["agreement"] >= 0.9 and doc["metrics"]["size_bytes"] < doc["metrics"]["size_bytes_original"]
    run = open_store(sqlite_url).get_run(doc["run_id"])
    assert run.kind == "compress" and run.status == "succeeded" and run.artifacts
    recipe.write_text("steps:\n  - technique: prune_magnitude\n    amount: 2\n")
    with pytest.raises(SystemExit) as info:
        main(["compress", "zoo:digits-mlp", "--recipe", str(recipe), "-o", str(tmp_path / "o2"), "--store", sqlite_url])
    assert info.value.code == 2 and "steps[0].amount=2" in capsys.readouterr().err


def test_compress_to_dir_saves_a_model_already_built(tmp_path: Path, digits_mlp) -> None:
    from frugalml.compress import ExportOnnx, compress_to_dir

    built = compress(digits_mlp, [ExportOnnx()])
    result = compress_to_dir(digits_mlp, [ExportOnnx()], tmp_path / "a", compressed=built)
    assert result.handle is built and load_model(tmp_path / "a").metadata["compression"]["recipe"] == \
        built.metadata["compression"]["recipe"]
    with pytest.raises(InvalidArgumentError, match="compressed=.*not the result of this recipe"):
        compress_to_dir(digits_mlp, [QuantizeDynamic()], tmp_path / "b", compressed=built)


def test_fidelity_is_measured_on_a_sample_of_the_test_rows(digits_mlp) -> None:
    # A file sorted by label: its first rows hold one class. The fidelity sample is seeded over the
    # test split (any case of "test"), as `evaluate` takes it, so every held-out class is in it.
    from frugalml.compress._api import _eval_items
    from frugalml.datasets import load_dataset

    data = load_dataset("zoo:digits")
    frame = data.frame.sort_values("label", kind="stable").reset_index(drop=True)
    frame["split"] = np.where(frame["label"] >= 5, "Test", "train")  # the held-out rows are digits 5-9
    sorted_data = type(data)(data.name, frame, data.text_column, data.feature_columns, data.label_column,
                             None, data.feature_shape)
    items, labels = _eval_items(digits_mlp, sorted_data, limit=50)
    assert len(items) == len(labels) == 50 and set(labels.tolist()) == {5, 6, 7, 8, 9}
