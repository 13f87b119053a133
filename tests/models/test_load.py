"""Model loading: every format, the zoo, and every refusal path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from frugalml import load_model
from frugalml.errors import InvalidArgumentError, ModelLoadError, UnsafeFormatError
from frugalml.models import DigitsMLP


def test_minilm_matches_sentence_transformers(minilm) -> None:
    from sentence_transformers import SentenceTransformer

    texts = ["The cat sat on the mat.", "Return the number of items in a container.", "short"]
    ours = minilm.predict(texts)
    reference = SentenceTransformer(minilm.metadata["source_dir"], device="cpu").encode(texts)
    assert ours.shape == (3, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert minilm.format == "sentence-transformers" and minilm.task == "embedding"


def test_minilm_fixed_length_padding_keeps_embeddings(minilm) -> None:
    texts = ["Open the file and return a stream."]
    np.testing.assert_allclose(minilm.predict(texts, seq_len=64), minilm.predict(texts), atol=1e-5)


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn"])
def test_digits_zoo_models_are_accurate(name: str) -> None:
    from frugalml import load_dataset

    handle = load_model(f"zoo:{name}")
    test = load_dataset("zoo:digits", split="test")
    logits = handle.predict(test.features())
    accuracy = float((logits.argmax(1) == test.labels()).mean())
    assert accuracy >= 0.95
    assert handle.metadata["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert handle.weight_files[0].suffix == ".safetensors"


def test_torch_module_with_example_inputs() -> None:
    module = DigitsMLP()
    handle = load_model(module, example_inputs=torch.randn(4, 64), task="classification")
    assert handle.format == "torch" and handle.input_spec.item_shape == (64,)
    assert handle.predict(np.zeros((3, 64), dtype=np.float32)).shape == (3, 10)


def test_torch_module_needs_example_inputs() -> None:
    with pytest.raises(InvalidArgumentError, match="example_inputs"):
        load_model(DigitsMLP())
    with pytest.raises(ModelLoadError, match="forward failed"):
        load_model(DigitsMLP(), example_inputs=torch.randn(4, 7))


def test_onnx_round_trip(digits_mlp, tmp_path: Path) -> None:
    path = digits_mlp.export_onnx(tmp_path / "mlp.onnx")
    handle = load_model(path)
    x = digits_mlp.example_inputs[:5]
    np.testing.assert_allclose(handle.predict(x), digits_mlp.predict(x), atol=1e-4)
    assert handle.format == "onnx" and handle.input_spec.item_shape == (64,)


def test_text_onnx_needs_tokenizer(minilm, tmp_path: Path) -> None:
    path = minilm.export_onnx(tmp_path / "minilm.onnx")
    with pytest.raises(ModelLoadError, match="tokenizer.json"):
        load_model(path)
    minilm.tokenizer.save_pretrained(str(tmp_path))
    handle = load_model(path, task="embedding")
    np.testing.assert_allclose(handle.predict(["hello world"]), minilm.predict(["hello world"]), atol=1e-4)


def test_text_export_uses_eager_attention_and_restores_it(minilm, tmp_path: Path) -> None:
    import onnx

    bert = minilm.module.encoder
    before = bert.config._attn_implementation
    assert before == "sdpa"  # transformers' default: what the export must switch away from
    path = minilm.export_onnx(tmp_path / "minilm.onnx")
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    # scaled_dot_product_attention exports NaN guards on every attention matrix; eager attention has none.
    assert "IsNaN" not in ops and ops.count("Softmax") == 6
    assert bert.config._attn_implementation == before  # the live model is unchanged
    minilm.tokenizer.save_pretrained(str(tmp_path))
    texts = ["hello world", "a much longer sentence, so that the shorter one is padded in the batch"]
    np.testing.assert_allclose(load_model(path, task="embedding").predict(texts), minilm.predict(texts), atol=1e-4)


def test_pickles_are_refused_by_default(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(DigitsMLP(), path)
    with pytest.raises(UnsafeFormatError, match="safetensors"):
        load_model(path)
    handle = load_model(path, trust_pickle=True, example_inputs=torch.randn(2, 64))
    assert handle.predict(np.zeros((1, 64), dtype=np.float32)).shape == (1, 10)


def test_state_dict_pickle_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(DigitsMLP().state_dict(), path)
    with pytest.raises(ModelLoadError, match="not an nn.Module"):
        load_model(path, trust_pickle=True, example_inputs=torch.randn(2, 64))


def test_hf_dir_with_pickled_weights_is_refused(minilm, tmp_path: Path) -> None:
    target = tmp_path / "model"
    shutil.copytree(minilm.metadata["source_dir"], target)
    (target / "model.safetensors").unlink()
    (target / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(UnsafeFormatError, match="trust-pickle"):
        load_model(target)


def test_corrupt_safetensors(minilm, tmp_path: Path) -> None:
    target = tmp_path / "model"
    shutil.copytree(minilm.metadata["source_dir"], target)
    (target / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(ModelLoadError, match="not a valid safetensors file"):
        load_model(target)


def test_corrupt_onnx(tmp_path: Path) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"definitely not protobuf")
    with pytest.raises(ModelLoadError, match="not a valid ONNX model"):
        load_model(path)


@pytest.mark.parametrize("spec, error, match", [
    ("zoo:minilmm", ModelLoadError, "Did you mean 'zoo:minilm'"),
    ("/no/such/path", ModelLoadError, "no such file"),
    ("", InvalidArgumentError, "must be zoo:NAME"),
])
def test_bad_specs(spec: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_model(spec)


def test_unknown_format_and_bare_safetensors(tmp_path: Path) -> None:
    weird = tmp_path / "model.xyz"
    weird.write_text("x")
    with pytest.raises(ModelLoadError, match="unknown model format"):
        load_model(weird)
    from safetensors.torch import save_file

    bare = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    with pytest.raises(ModelLoadError, match="architecture"):
        load_model(bare)


def test_wrong_task_for_zoo_model() -> None:
    with pytest.raises(InvalidArgumentError, match="task"):
        load_model("zoo:digits-mlp", task="embedding")
    with pytest.raises(InvalidArgumentError, match="Did you mean 'embedding'"):
        load_model("zoo:minilm", task="embeding")


def test_predict_refuses_inputs_of_the_wrong_kind(minilm, digits_mlp) -> None:
    # Before: a text model tokenized str(None) and str(row) as text, without a word.
    for wrong, kind in (([None, "a sentence"], "NoneType"), (np.zeros((2, 4)), "ndarray"), ([3, 4], "int")):
        with pytest.raises(InvalidArgumentError, match=rf"^inputs='item 0: {kind}': .* takes strings"):
            minilm.predict(wrong)
    with pytest.raises(InvalidArgumentError, match=r"^inputs='list': cannot be read as float32 numbers"):
        digits_mlp.predict(["a", "b"])
    with pytest.raises(InvalidArgumentError, match="cannot be read as float32"):
        digits_mlp.predict([[0.0] * 64, [0.0] * 3])  # ragged rows


@pytest.mark.cuda
def test_predict_follows_the_module_between_devices() -> None:
    digits_mlp = load_model("zoo:digits-mlp")  # its own handle: this test moves the module around
    x = digits_mlp.example_inputs[:8]
    on_gpu = digits_mlp.predict(x, device="cuda")
    on_cpu = digits_mlp.predict(x, device="cpu")  # moves the module back to the CPU
    again = digits_mlp.predict(x, device="cuda")  # the cached GPU runner must not see a CPU module
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-4)
    np.testing.assert_allclose(on_gpu, again, atol=1e-6)


def test_minilm_from_a_half_precision_copy(minilm, tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_assets", Path(__file__).parents[2] / "benchmarks" / "gpu_assets.py")
    assets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(assets)
    assets.minilm(tmp_path / "minilm")  # what a GPU machine gets: fp16 weights, half the size
    monkeypatch.setenv("FRUGAL_MINILM_DIR", str(tmp_path / "minilm"))
    copy = load_model("zoo:minilm")
    assert next(copy.module.parameters()).dtype == torch.float32
    texts = ["Open the file and read it.", "Return the number of items in the list."]
    a, b = minilm.predict(texts), copy.predict(texts)
    assert ((a * b).sum(1) > 0.9999).all()  # both are L2-normalised
    monkeypatch.setenv("FRUGAL_MINILM_DIR", str(tmp_path))
    with pytest.raises(ModelLoadError, match="FRUGAL_MINILM_DIR"):
        load_model("zoo:minilm")


def test_weights_digest_names_the_weights(tmp_path: Path) -> None:
    from frugalml.models import weights_digest

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    first = weights_digest(load_model(module, example_inputs=torch.randn(2, 4)))
    clone = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    clone.load_state_dict(module.state_dict())
    assert weights_digest(load_model(clone, example_inputs=torch.randn(2, 4))) == first  # same weights
    with torch.no_grad():
        clone[2].bias[1] += 1e-6
    assert weights_digest(load_model(clone, example_inputs=torch.randn(2, 4))) != first
    bf16 = weights_digest(load_model(module.to(torch.bfloat16), example_inputs=torch.randn(2, 4)))
    assert bf16 not in (first, None)  # a dtype numpy lacks is hashed too
    # A model read from files is named by its files.
    onnx = load_model("zoo:digits-mlp").export_onnx(tmp_path / "m.onnx")
    assert weights_digest(load_model(onnx)) == weights_digest(load_model(onnx))


def test_a_classifier_names_its_classes_and_maps_text_labels(text_classifier) -> None:
    from frugalml.errors import DataError
    from frugalml.models._text import class_names_from_config

    handle = load_model(text_classifier["dir"])
    assert handle.task == "classification" and handle.class_names == ["neg", "pos"]
    np.testing.assert_array_equal(handle.label_indices(np.array(["pos", "neg", "pos"], dtype=object)), [1, 0, 1])
    np.testing.assert_array_equal(handle.label_indices(np.array([1, 0])), [1, 0])  # indices already
    np.testing.assert_array_equal(handle.label_indices(np.array([1.0, 0.0])), [1, 0])  # a CSV's float column
    with pytest.raises(DataError, match=r"^label_column='sentiment': holds labels .* does not know: 'meh'.*"
                                        r"classes are neg, pos"):
        handle.label_indices(np.array(["pos", "meh"], dtype=object), column="sentiment")
    # transformers' placeholders name nothing: text labels are then an error, indices still work
    assert class_names_from_config({"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}) is None
    assert class_names_from_config({"id2label": {"1": "b", "0": "a"}}) == ["a", "b"]
    digits = load_model("zoo:digits-mlp")
    assert digits.class_names is None
    with pytest.raises(DataError, match=r"holds labels such as 'seven' and zoo:digits-mlp does not name its classes"):
        digits.label_indices(np.array(["seven"], dtype=object))
