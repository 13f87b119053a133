"""Drift statistics: is the current data distributed like the reference?

- **PSI** (population stability index), sum over bins of (c - r) ln(c / r) with r, c the reference and
  current shares per bin (counts + 0.5, so no bin is empty); numeric bins are the reference's deciles
  (closed on the right; ties merged), categorical bins its categories (plus one for categories the
  reference never saw). The customary reading: < 0.1 stable, 0.1-0.25 a moderate shift, >= 0.25 a
  major one.
- **KS** (numeric): the two-sample Kolmogorov-Smirnov test (scipy). Where its exact distribution cannot
  be computed (large samples, ties) scipy falls back to the asymptotic one, as intended.
- **chi-squared** (categorical): the test of independence on the 2 x categories count table (scipy).
  A numeric column of at most ``DISCRETE_MAX`` distinct integer values (class labels 0/1, a rating
  1-5, a count of children) is categorical: KS assumes a continuous distribution and is conservative
  when every value is a tie.
- **MMD** (embeddings, many dimensions): the squared maximum mean discrepancy with an RBF kernel
  (bandwidth: the median pairwise distance), its p-value from a permutation test.

A feature alerts when its shift is both material and real: PSI >= 0.1 together with p < alpha. Each
half alone misleads. With thousands of rows a test's p-value is tiny for shifts too small to matter;
with a few dozen rows PSI is large from sampling alone: its expected value with no drift is about
(bins - 1)(1/n + 1/m) for n and m rows (`psi_noise`), 0.32 for 30 rows against 500 in ten bins, above
the 0.25 alert band. A PSI that exceeds that expectation by 0.25 or more but that the test cannot
confirm is a warning. MMD alerts on p < alpha.

A table of many columns is many tests: 64 columns at alpha = 0.01 alert somewhere on about half of all
batches that did not drift. `holm` adjusts the column checks' p-values together (Holm-Bonferroni), so
the chance of any false alert across them stays at alpha; the raw p-value is kept beside it.

A column's missing values are a check of their own (`missing_drift`: the share missing on each side,
PSI over present / missing and the chi-squared test), so a feature that goes missing in production is
seen, not dropped with the missing rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["DISCRETE_MAX", "PSI_ALERT", "PSI_WARN", "FeatureDrift", "chi2_test", "holm", "ks_test", "missing_drift", "mmd_test",
           "psi_categorical", "psi_noise", "psi_numeric"]

PSI_WARN, PSI_ALERT = 0.1, 0.25
DISCRETE_MAX = 10  # distinct integer values, both sides together, at or below which a numeric column is categorical


def _psi(r: np.ndarray, c: np.ndarray) -> float:
    # counts + 0.5 (Jeffreys): an empty bin would make ln(c / r) infinite. A floor on the share (1e-4, as
    # before) made each bin that 30 rows happen to leave empty worth ~0.7 of PSI, so 30 rows drawn from
    # the reference itself passed the 0.25 band in three runs of four; with + 0.5 it is ~0.17
    r = (r + 0.5) / (r.sum() + 0.5 * len(r))
    c = (c + 0.5) / (c.sum() + 0.5 * len(c))
    return float(np.sum((c - r) * np.log(c / r)))


def psi_noise(bins: int, n_reference: int, n_current: int) -> float:
    """PSI's expected value when nothing drifted, from sampling alone: (bins - 1)(1/n + 1/m).

    Why: to second order (c - r) ln(c / r) = (c - r)^2 / p for a bin of true share p, and with no drift
    c - r has variance p (1 - p)(1/n + 1/m); summed over the bins, (bins - 1)(1/n + 1/m)."""
    return max(0, bins - 1) * (1 / max(1, n_reference) + 1 / max(1, n_current))


def _edges(reference: np.ndarray, bins: int) -> np.ndarray:
    return np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))


def psi_numeric(reference: np.ndarray, current: np.ndarray, *, bins: int = 10) -> float:
    """PSI over the reference's quantile bins (ties merged)."""
    edges = _edges(reference, bins)
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
    import warnings

    from scipy.stats import ks_2samp

    with warnings.catch_warnings():
        # scipy's own notice that it used the asymptotic p-value where the exact one failed: expected
        # for thousands of rows with ties, and not the user's to act on
        warnings.filterwarnings("ignore", message=".*Exact calculation unsuccessful.*", category=RuntimeWarning)
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
    kind: str  # numeric | categorical | missing | embedding
    psi: float | None
    test: str
    statistic: float
    p_value: float
    level: str = "ok"  # ok | warn | alert
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "kind": self.kind, "psi": self.psi, "test": self.test,
                "statistic": self.statistic, "p_value": self.p_value, "level": self.level, **self.details}


def level_of(psi: float | None, p_value: float, alpha: float, noise: float = 0.0) -> str:
    """alert: a material shift (PSI >= 0.1) the test confirms (p < alpha); warn: a major PSI (>= 0.25
    beyond its no-drift value ``noise``) the test cannot confirm, as with few rows; ok otherwise. Without
    a PSI (MMD), the test alone."""
    if psi is None:
        return "alert" if p_value < alpha else "ok"
    if psi >= PSI_WARN and p_value < alpha:
        return "alert"
    return "warn" if psi - noise >= PSI_ALERT else "ok"


def column_drift(name: str, reference: np.ndarray, current: np.ndarray, *, alpha: float = 0.01) -> FeatureDrift:
    """Numeric columns get PSI + KS; anything else, and numeric columns of at most ``DISCRETE_MAX``
    distinct integer values, PSI + chi-squared."""
    reference, current = np.asarray(reference), np.asarray(current)
    numeric = np.issubdtype(reference.dtype, np.number) and np.issubdtype(current.dtype, np.number)
    if numeric:
        ref = np.asarray(reference, dtype=float)
        cur = np.asarray(current, dtype=float)
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        both = np.concatenate([ref, cur])
        if len(both) and np.all(both == np.round(both)) and len(np.unique(both)) <= DISCRETE_MAX:
            # integer codes, as categories; through int64 so a file read as float (a blank made the
            # column float) gives "1" as the other file's integers do, not a new category "1.0"
            reference, current = ref.astype(np.int64).astype(str), cur.astype(np.int64).astype(str)
            numeric = False
    if numeric:
        value = psi_numeric(ref, cur)
        stat, p = ks_test(ref, cur)
        noise = psi_noise(len(_edges(ref, 10)) + 1, len(ref), len(cur))
        return FeatureDrift(name, "numeric", value, "ks", stat, p, level_of(value, p, alpha, noise),
                            {"reference_mean": float(ref.mean()), "current_mean": float(cur.mean()),
                             "psi_noise": noise})
    r, c = _counts(reference, current)
    value = _psi(r, c)
    stat, p = chi2_test(reference, current)
    noise = psi_noise(int(((r + c) > 0).sum()), len(reference), len(current))
    return FeatureDrift(name, "categorical", value, "chi2", stat, p, level_of(value, p, alpha, noise),
                        {"psi_noise": noise})


def missing_drift(name: str, reference_missing: int, reference_rows: int, current_missing: int, current_rows: int,
                  *, alpha: float = 0.01) -> FeatureDrift:
    """Drift of a column's share of missing values: PSI over (present, missing) and the chi-squared test
    of the 2 x 2 table."""
    from scipy.stats import chi2_contingency

    r = np.array([reference_rows - reference_missing, reference_missing], dtype=float)
    c = np.array([current_rows - current_missing, current_missing], dtype=float)
    value = _psi(r, c)
    noise = psi_noise(2, reference_rows, current_rows)
    table = np.stack([r, c])
    if (table.sum(0) == 0).any():  # neither side has a missing (or a present) value: nothing to test
        stat, p = 0.0, 1.0
    else:
        stat, p = (float(v) for v in chi2_contingency(table)[:2])
    return FeatureDrift(f"{name} (missing)", "missing", value, "chi2", stat, p, level_of(value, p, alpha, noise),
                        {"reference_share": reference_missing / max(1, reference_rows),
                         "current_share": current_missing / max(1, current_rows), "psi_noise": noise})


def embedding_drift(name: str, reference: np.ndarray, current: np.ndarray, *, alpha: float = 0.01,
                    permutations: int = 200, seed: int = 0) -> FeatureDrift:
    stat, p = mmd_test(reference, current, permutations=permutations, seed=seed)
    return FeatureDrift(name, "embedding", None, "mmd", stat, p, level_of(None, p, alpha),
                        {"permutations": permutations})


def holm(checks: list[FeatureDrift], alpha: float) -> list[FeatureDrift]:
    """The checks with Holm-adjusted p-values (``details['p_holm']``) and their levels from them.

    Holm's step-down: the i-th smallest of m p-values is multiplied by m - i + 1, kept monotone, capped at
    1; any alert then has family-wise error <= alpha, uniformly more powerful than Bonferroni."""
    m = len(checks)
    if m < 2:
        return [replace(c, details={**c.details, "p_holm": c.p_value}) for c in checks]
    order = np.argsort([c.p_value for c in checks], kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(np.array([checks[i].p_value for i in order]) * (m - np.arange(m))))
    out = list(checks)
    for rank, i in enumerate(order):
        c, p = checks[i], float(adjusted[rank])
        out[i] = replace(c, level=level_of(c.psi, p, alpha, c.details.get("psi_noise", 0.0)),
                         details={**c.details, "p_holm": p})
    return out
