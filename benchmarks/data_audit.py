"""What does `frugal data audit` find, and what does it cost? Planted problems, and a million rows.

1. Planted problems (frugalml.data.planted_digits / planted_tabular / planted_text): exact copies,
   near copies (digits: a quarter of the pixels moved by 1 of 16; breast-cancer table: every value
   times 1 + N(0, 0.002); text: one word in 12 dropped), 10% of digit and table labels flipped, a
   quarter of the copies put in the other split. Precision and recall of each finding; for vector
   rows also those of the other near-copy rule forced on the same rows (``near_metric``), the peer.
2. Scale: an audit of 1,000,000 generated text rows (two random stdlib docstring sentences and an
   identifier per row, 2% exact and 2% near copies, a label column) in a separate process: wall
   time and peak RSS (the target: <= 2 GB).

    python benchmarks/data_audit.py [--rows 1000000] [--out benchmarks/results/data_audit.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _pr(found: set[int], truth: set[int]) -> dict[str, float]:
    tp = len(found & truth)
    return {"found": len(found), "planted": len(truth), "precision": tp / len(found) if found else 1.0,
            "recall": tp / len(truth) if truth else 1.0}


def planted(tmp: Path) -> dict[str, object]:
    from frugalml.data import audit, planted_digits, planted_tabular, planted_text

    out: dict[str, object] = {}
    for name, make, kwargs in (("digits", planted_digits, {"label_column": "label"}),
                               ("breast-cancer", planted_tabular, {"label_column": "label"}),
                               ("stdlib-docs", planted_text, {"find_label_issues": False})):
        p = make()
        path = tmp / f"{name}.parquet"
        p.frame.to_parquet(path)
        started = time.perf_counter()
        r = audit(path, split_column="split", **kwargs)
        row = {"rows": r.n_rows, "seconds": time.perf_counter() - started,
               "exact_duplicates": _pr({a for a, _ in r.exact_duplicates}, p.exact),
               "near_duplicates": _pr({a for a, _, _ in r.near_duplicates}, p.near),
               "leakage": _pr({a for a, _, _ in r.leakage}, p.leaked), "near_metric": r.near_metric}
        if p.flipped:
            row["label_issues"] = _pr({a for a, _, _ in r.label_issues}, p.flipped)
        if r.near_metric != "jaccard":
            # the peer: the other vector rule forced on the same rows (raw cosine is what the audit used
            # for every table before it told columns in their own units from columns on one scale)
            other = "distance_sd" if r.near_metric == "cosine" else "cosine"
            f = audit(path, split_column="split", label_column="label", find_label_issues=False, near_metric=other)
            row["other_metric"] = {"near_metric": other,
                                   "near_duplicates": _pr({a for a, _, _ in f.near_duplicates}, p.near),
                                   "leakage": _pr({a for a, _, _ in f.leakage}, p.leaked)}
        out[name] = row
    return out


def million(tmp: Path, rows: int) -> dict[str, object]:
    import pandas as pd

    from frugalml.datasets import load_dataset

    rng = np.random.default_rng(0)
    base = load_dataset("zoo:stdlib-docs").frame
    texts, labels = base["text"].to_numpy(), base["source"].to_numpy()
    pick = rng.integers(0, len(texts), rows)
    second = rng.integers(0, len(texts), rows)
    ids = rng.integers(0, 10**9, rows)
    # two random sentences and an id per row: distinct rows, unless planted below
    text = [f"{texts[i]} {texts[j]} [id {k}]" for i, j, k in zip(pick, second, ids)]
    n_copy = rows // 50
    for target, source in zip(rng.integers(0, rows, n_copy), rng.integers(0, rows, n_copy)):
        text[target] = text[source].upper()  # exact copies (after normalisation)
    for target, source in zip(rng.integers(0, rows, n_copy), rng.integers(0, rows, n_copy)):
        words = text[source].split()
        text[target] = " ".join(words[:-2] + words[-1:])  # near copies: one word dropped
    frame = pd.DataFrame({"text": text, "label": labels[pick], "split": np.where(rng.random(rows) < 0.8, "train", "test")})
    path = tmp / "million.parquet"
    frame.to_parquet(path, row_group_size=50_000)
    del frame, text
    code = ("import json, logging, resource, sys, time; from frugalml.data import audit; "
            "logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s'); t = time.perf_counter(); "
            f"r = audit({str(path)!r}, label_column='label', split_column='split'); "
            "s = r.to_dict()['summary']; s['seconds'] = time.perf_counter() - t; "
            "s['peak_rss_bytes'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024; "
            "s['label_issues_checked'] = r.label_issues_checked; print(json.dumps(s))")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update({"rows": rows, "file_bytes": path.stat().st_size, "wall_seconds": time.perf_counter() - started,
                   "peak_rss_gib": result["peak_rss_bytes"] / 2**30})
    return result


def main() -> None:
    from frugalml.measure.env import fingerprint

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data_audit.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = {"benchmark": "data_audit", "machine": fingerprint(), "planted": planted(Path(tmp)),
                  "scale": million(Path(tmp), args.rows)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"planted": result["planted"], "scale": result["scale"]}, indent=2))


if __name__ == "__main__":
    main()
