"""Drift statistics: is the current data distributed like the reference?

- **PSI** (population stability index), sum over bins of (c - r) ln(c / r) with r, c the reference and
  current shares per bin; numeric bins are the reference's deciles (closed on the right; ties merged), categorical bins its categories
  (plus one for categories the reference never saw). The customary reading: < 0.1 stable, 0.1-0.25 a
  moderate shift (warn), >= 0.25 a major shift (alert).
- **KS** (numeric): the two-sample Kolmogorov-Smirnov test (scipy).
- **chi-squared** (categorical): the test of independence on the 2 x categories count table (scipy).
- **MMD** (embeddings, many dimensions): the squared maximum mean discrepancy with an RBF kernel
  (bandwidth: the median pairwise distance), its p-value from a permutation test.

With thousands of rows a test's p-value is tiny for shifts too small to matter, so a feature alerts on
PSI >= 0.25, or on p < alpha together with PSI >= 0.1; MMD alerts on p < alpha.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PSI_ALERT", "PSI_WARN", "FeatureDrift", "chi2_test", "ks_test", "mmd_test", "psi_categorical",
           "psi_numeric"]

PSI_WARN, PSI_ALERT = 0.1, 0.25
_EPS = 1e-4  # share floor: an empty bin would make ln(c / r) infinite


def _psi(r: np.ndarray, c: np.ndarray) -> float:
    r = np.clip(r / max(1, r.sum()), _EPS, None)
    c = np.clip(c / max(1, c.sum()), _EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_numeric(reference: np.ndarray, current: np.ndarray, *, bins: int = 10) -> float:
    """PSI over the reference's quantile bins (ties merged)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    # bins closed on the right, (edge[i-1], edge[i]]: a reference that is constant at v gives the bins
    # (-inf, v] and (v, inf), so a current at v + 4 lands in the second (side="right" put both in one)
    r = np.bincount(np.searchsorted(edges, reference, side="left"), minlength=len(edges) + 1)
    c = np.bincount(np.searchsorted(edges, current, side="left"), minlength=len(edges) + 1)
    return _psi(r.astype(float), c.astype(float))


def _counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    categories = {v: i for i, v in enumerate(dict.fromkeys(map(str, reference)))}
    unseen = len(categories)
    r = np.bincount([categories[str(v)] for v in reference], minlength=unseen + 1)
    c = np.bincount([categories.get(str(v), unseen) for v in current], minlength=unseen + 1)
    return r.astype(float), c.astype(float)


def psi_categorical(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI over the reference's categories, plus one bin for categories it never saw."""
    return _psi(*_counts(reference, current))


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def chi2_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    from scipy.stats import chi2_contingency

    r, c = _counts(reference, current)
    keep = (r + c) > 0
    if keep.sum() < 2:
        return 0.0, 1.0
    stat, p, _, _ = chi2_contingency(np.stack([r[keep], c[keep]]))
    return float(stat), float(p)


def _rbf(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.exp(-gamma * np.maximum(d, 0))


def mmd_test(reference: np.ndarray, current: np.ndarray, *, permutations: int = 200, max_rows: int = 500,
             seed: int = 0) -> tuple[float, float]:
    """(MMD^2, permutation p-value) with an RBF kernel; at most ``max_rows`` rows of each side (sampled)."""
    rng = np.random.default_rng(seed)
    x = reference[rng.choice(len(reference), min(max_rows, len(reference)), replace=False)].astype(np.float64)
    y = current[rng.choice(len(current), min(max_rows, len(current)), replace=False)].astype(np.float64)
    z = np.concatenate([x, y])
    d = np.sqrt(np.maximum(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1), 0))
    median = float(np.median(d[np.triu_indices(len(z), 1)])) or 1.0
    k = _rbf(z, z, 1.0 / (2 * median**2))
    n = len(x)

    def stat(order: np.ndarray) -> float:
        a, b = order[:n], order[n:]
        return float(k[np.ix_(a, a)].mean() + k[np.ix_(b, b)].mean() - 2 * k[np.ix_(a, b)].mean())

    observed = stat(np.arange(len(z)))
    null = [stat(rng.permutation(len(z))) for _ in range(permutations)]
    p = (1 + sum(v >= observed for v in null)) / (1 + permutations)
    return observed, float(p)


@dataclass
class FeatureDrift:
    """One feature's (or the predictions', or the embeddings') drift: statistics and a level."""

    feature: str
    kind: str  # numeric | categorical | embedding
    psi: float | None
    test: str
    statistic: float
    p_value: float
    level: str = "ok"  # ok | warn | alert
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "kind": self.kind, "psi": self.psi, "test": self.test,
                "statistic": self.statistic, "p_value": self.p_value, "level": self.level, **self.details}


def level_of(psi: float | None, p_value: float, alpha: float) -> str:
    if psi is None:
        return "alert" if p_value < alpha else "ok"
    if psi >= PSI_ALERT or (p_value < alpha and psi >= PSI_WARN):
        return "alert"
    return "warn" if psi >= PSI_WARN else "ok"


def column_drift(name: str, reference: np.ndarray, current: np.ndarray, *, alpha: float = 0.01) -> FeatureDrift:
    """Numeric columns get PSI + KS, anything else PSI + chi-squared."""
    numeric = np.issubdtype(np.asarray(reference).dtype, np.number) and np.issubdtype(np.asarray(current).dtype,
                                                                                       np.number)
    if numeric:
        ref = np.asarray(reference, dtype=float)
        cur = np.asarray(current, dtype=float)
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        value = psi_numeric(ref, cur)
        stat, p = ks_test(ref, cur)
        return FeatureDrift(name, "numeric", value, "ks", stat, p, level_of(value, p, alpha),
                            {"reference_mean": float(ref.mean()), "current_mean": float(cur.mean())})
    value = psi_categorical(np.asarray(reference), np.asarray(current))
    stat, p = chi2_test(np.asarray(reference), np.asarray(current))
    return FeatureDrift(name, "categorical", value, "chi2", stat, p, level_of(value, p, alpha))


def embedding_drift(name: str, reference: np.ndarray, current: np.ndarray, *, alpha: float = 0.01,
                    permutations: int = 200, seed: int = 0) -> FeatureDrift:
    stat, p = mmd_test(reference, current, permutations=permutations, seed=seed)
    return FeatureDrift(name, "embedding", None, "mmd", stat, p, level_of(None, p, alpha),
                        {"permutations": permutations})
