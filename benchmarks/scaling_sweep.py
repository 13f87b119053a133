"""Does a law fitted on small models predict a bigger one? The default `frugal scaling sweep`, for real.

Trains the default grid (byte-level transformers, d_model 16..64, on 30K..480K tokens of
zoo:stdlib-docs text, each token seen once), fits L(N, D) = E + A/N^alpha + B/D^beta on every model
but the largest, and predicts the largest model's held-out loss at each data size. The issue's bar:
within 5%. Also reports the fit on all points, and the sweep's wall-clock time.

    python benchmarks/scaling_sweep.py [--out benchmarks/results/scaling_sweep.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from frugalml.measure.env import fingerprint
    from frugalml.scaling import fit_two_resource, points_from_arrays
    from frugalml.scaling._sweep import SweepConfig, sweep

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scaling_sweep.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for name in ("frugalml.scaling._sweep",):
        logging.getLogger(name).setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SweepConfig(store=f"sqlite:///{tmp}/runs.db")
        started = time.perf_counter()
        result = sweep(cfg)
        seconds = time.perf_counter() - started
    pts = result.points
    n = np.array([p["n_params"] for p in pts])
    d = np.array([p["n_tokens"] for p in pts])
    loss = np.array([p["loss"] for p in pts])
    flops = np.array([p["flops"] for p in pts])
    largest = n == n.max()
    train = points_from_arrays(n[~largest], d[~largest], loss[~largest], flops[~largest], source="all but the largest")
    held_fit = fit_two_resource(train)
    predicted = held_fit.law.predict(n[largest], d[largest])
    errors = (predicted - loss[largest]) / loss[largest]
    rows = [{"n_params": float(a), "n_tokens": float(b), "loss": float(c), "predicted": float(p), "rel_error": float(e)}
            for a, b, c, p, e in zip(n[largest], d[largest], loss[largest], predicted, errors)]
    out = {
        "benchmark": "scaling_sweep",
        "question": "fitted on every model but the largest, does the law predict the largest model's held-out loss "
                    "within 5%?",
        "machine": fingerprint(),
        "config": result.config,
        "sweep_seconds": seconds,
        "points": pts,
        "fit_all": result.fit.to_dict() if result.fit else None,
        "fit_without_largest": held_fit.to_dict(),
        "held_out": rows,
        "max_abs_rel_error": float(np.abs(errors).max()),
        "mean_abs_rel_error": float(np.abs(errors).mean()),
        "within_5_percent": bool(np.abs(errors).max() <= 0.05),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("sweep_seconds", "max_abs_rel_error", "mean_abs_rel_error",
                                          "within_5_percent")}, indent=2))
    for r in rows:
        print(f"N={r['n_params']:.0f} D={r['n_tokens']:.0f}: loss {r['loss']:.4f}, predicted {r['predicted']:.4f} "
              f"({100 * r['rel_error']:+.2f}%)")


if __name__ == "__main__":
    main()
