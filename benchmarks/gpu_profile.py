"""Profile models on a CUDA GPU with frugalml.profile and write one JSON file naming the device.

This is the foundation issue's CUDA check: CUDA-event timing, NVML energy, the allocator's peak,
and the roofline against the device table's entry (e.g. H100 SXM: 989 TFLOP/s bf16 dense,
66.9 TFLOP/s fp32, 3.35 TB/s HBM3).

Models: the MiniLM-L6 architecture and a BERT-base-sized encoder, both with random weights built
from their configs (speed does not depend on weight values, and the 90 MB MiniLM weight package
does not travel to the GPU machine), plus zoo:digits-cnn, trained there on first use.

    python benchmarks/gpu_profile.py --assets DIR_WITH_MINILM_CONFIG_AND_TOKENIZER --out results.json
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from frugalml import profile  # noqa: E402
from frugalml._json import dumps  # noqa: E402

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def build_random_encoder(assets: Path, target: Path, *, bert_base: bool) -> Path:
    """A Hugging Face directory with random weights: MiniLM's config, or BERT-base's (768 x 12)."""
    import transformers

    torch.manual_seed(0)
    config = transformers.AutoConfig.from_pretrained(str(assets), local_files_only=True)
    if bert_base:
        config = transformers.BertConfig(vocab_size=config.vocab_size)  # hidden 768, 12 layers, 12 heads, ff 3072
    model = transformers.AutoModel.from_config(config)
    model.save_pretrained(str(target), safe_serialization=True)
    for name in TOKENIZER_FILES:
        shutil.copy(assets / name, target / name)
    if not bert_base:  # keep the sentence-transformers pipeline (mean pooling + normalise)
        for name in ("modules.json", "sentence_bert_config.json"):
            shutil.copy(assets / name, target / name)
        (target / "1_Pooling").mkdir(exist_ok=True)
        shutil.copy(assets / "1_Pooling" / "config.json", target / "1_Pooling" / "config.json")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, required=True, help="MiniLM config.json + tokenizer files")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch-sizes", default="1,32,256")
    parser.add_argument("--max-time", type=float, default=5.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible: this benchmark needs one")

    work = Path(tempfile.mkdtemp(prefix="frugal-gpu-"))
    store = f"sqlite:///{work / 'runs.db'}"
    models = {
        "minilm-l6-arch (random weights)": str(build_random_encoder(args.assets, work / "minilm", bert_base=False)),
        "bert-base-arch (random weights)": str(build_random_encoder(args.assets, work / "bert", bert_base=True)),
        "zoo:digits-cnn": "zoo:digits-cnn",
    }
    results = {}
    for label, spec in models.items():
        start = time.perf_counter()
        is_text = not spec.startswith("zoo:digits")
        p = profile(spec, device="cuda", batch_sizes=args.batch_sizes if is_text else "1,256,4096",
                    seq_len=128 if is_text else None, max_time_s=args.max_time, store=store)
        doc = p.to_dict()
        doc["wall_s"] = time.perf_counter() - start
        results[label] = doc
        roof = doc["roofline"]
        for b, s in doc["latency_ms"].items():
            print(f"{label:34s} batch {b:>5s}: p50 {s['p50']:9.3f} ms  p99 {s['p99']:9.3f} ms  "
                  f"{doc['throughput_items_per_s'][b]:12,.0f} items/s  {doc['energy_j_per_item'][b] * 1e3:9.3f} mJ/item "
                  f"({doc['energy_source']})  {roof['by_batch'][b]['achieved_flops_per_s'] / 1e12:7.2f} TFLOP/s "
                  f"{roof['by_batch'][b]['bound']}-bound")
    out = {
        "benchmark": "gpu_profile",
        "device": torch.cuda.get_device_name(),
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "note": "fp32 eager PyTorch as loaded; encoders have random weights (speed only); seq_len 128",
        "profiles": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dumps(out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
