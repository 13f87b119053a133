"""Fitting: known constants recovered from noisy synthetic data; bad input fails with one clear error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalml.errors import DataError, FrugalError, InvalidArgumentError
from frugalml.scaling import CONSTANTS, fit_power_law, fit_two_resource, load_points, points_from_arrays


def _synthetic(law, noise: float, seed: int = 1):
    rng = np.random.default_rng(seed)
    n = np.repeat(np.logspace(6, 11, 8), 8)
    d = np.tile(np.logspace(8, 13, 8), 8)
    return points_from_arrays(n, d, law.predict(n, d) * np.exp(rng.normal(0, noise, n.size)), source="synthetic")


@pytest.mark.parametrize("name", ["chinchilla", "epoch"])
def test_two_resource_fit_recovers_the_constants(name: str) -> None:
    """Data from a known law with 0.5% multiplicative noise: every constant within 5%, inside its CI."""
    law = CONSTANTS[name]
    fit = fit_two_resource(_synthetic(law, 0.005), n_boot=30, grid="coarse")
    for k in ("E", "A", "B", "alpha", "beta"):
        got, true = getattr(fit.law, k), getattr(law, k)
        assert abs(got / true - 1) < 0.05, (k, got, true)
        low, high = fit.law.ci[k]
        assert low <= got <= high
    assert fit.goodness["r2_log"] > 0.99 and fit.goodness["mean_abs_rel_error"] < 0.01
    assert fit.law.fitted_range.n_params == (1e6, 1e11)


def test_hoffmann_grid_finds_the_same_optimum() -> None:
    points = _synthetic(CONSTANTS["epoch"], 0.005)
    full = fit_two_resource(points, n_boot=0, grid="hoffmann")
    coarse = fit_two_resource(points, n_boot=0, grid="coarse")
    for k in ("E", "A", "B", "alpha", "beta"):
        assert math.isclose(getattr(full.law, k), getattr(coarse.law, k), rel_tol=1e-3)


def test_power_law_fit_recovers_the_constants() -> None:
    rng = np.random.default_rng(0)
    x = np.logspace(5, 9, 16)
    y = (300 * x**-0.3 + 1.5) * np.exp(rng.normal(0, 0.003, x.size))
    fit = fit_power_law(x, y, resource="params", n_boot=50)
    assert abs(fit.law.A / 300 - 1) < 0.05 and abs(fit.law.alpha / 0.3 - 1) < 0.05 and abs(fit.law.B / 1.5 - 1) < 0.05
    assert fit.law.ci["alpha"][0] < 0.3 < fit.law.ci["alpha"][1]


@pytest.mark.parametrize("kwargs, match", [
    ({"n": [1e6, 1e7, 1e8, 1e9], "d": [1e9, 2e9, 3e9, 4e9], "loss": [3.0, 2.9, 2.8, 2.7]}, "too few.*5 constants"),
    # too few and of one model size: the shape is named first (--single is the fix, not more runs)
    ({"n": [1e6] * 4, "d": [1e9, 2e9, 3e9, 4e9], "loss": [3.0, 2.9, 2.8, 2.7]}, "only one.*--single"),
    ({"n": [1e6, -1e6, 1e7, 1e7, 1e8, 1e8], "d": [1e9] * 6, "loss": [3.0] * 6}, "params.*row 1.*> 0"),
    ({"n": [1e6, 1e7] * 3, "d": [1e9, 1e10, 1e11] * 2, "loss": [3.0, float("nan"), 2.8, 2.7, 2.6, 2.5]},
     "loss.*row 1.*not a finite number"),
    ({"n": [1e6] * 6, "d": [1e9, 2e9, 3e9, 4e9, 5e9, 6e9], "loss": [3.0, 2.9, 2.8, 2.7, 2.6, 2.5]}, "only one"),
])
def test_bad_points_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        fit_two_resource(points_from_arrays(kwargs["n"], kwargs["d"], kwargs["loss"]), n_boot=0, grid="coarse")


def test_power_law_needs_more_points_than_constants() -> None:
    with pytest.raises(DataError, match="too few.*3 constants"):
        fit_power_law([1e6, 1e7, 1e8], [3.0, 2.5, 2.2], n_boot=0)
    # four runs, but of two sizes: the curve is not pinned down (it 'fitted', R^2 ~ 0)
    with pytest.raises(DataError, match=r"^params='2 distinct value\(s\)'.*3 or more different params"):
        fit_power_law([1e6, 1e6, 1e7, 1e7], [3.0, 3.1, 2.5, 2.4], resource="params", n_boot=0)


def test_power_law_flat_loss_is_flagged() -> None:
    flat = fit_power_law([1e6, 3e6, 1e7, 3e7, 1e8], [3.0] * 5, resource="params", n_boot=0)
    assert flat.law.alpha < 0.02 and "exponent is near 0" in flat.warnings[0]
    scaling = fit_power_law([1e6, 3e6, 1e7, 3e7, 1e8], [2 + 50 / n**0.3 for n in (1e6, 3e6, 1e7, 3e7, 1e8)],
                            n_boot=0)
    assert scaling.warnings == [] and scaling.law.alpha == pytest.approx(0.3, rel=0.01)


def test_text_in_a_number_column_is_named() -> None:
    with pytest.raises(DataError, match=r"^loss=\"row 2 = 'diverged'\": is not a number"):
        points_from_arrays([1e6, 1e7, 1e8, 1e9], [1e9] * 4, [3.0, 2.5, "diverged", 2.0])
    with pytest.raises(DataError, match=r"^params='row 0': is not a finite number.*those runs\.$"):
        points_from_arrays([None, 1e7], [1e9, 1e9], [3.0, 2.5])  # a missing size


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True),
                          st.floats(allow_nan=True)), min_size=0, max_size=8))
def test_points_validate_or_fail_with_one_named_error(rows: list) -> None:
    n, d, loss = ([r[i] for r in rows] for i in range(3))
    try:
        points = points_from_arrays(n, d, loss)
    except FrugalError as exc:
        assert exc.argument in ("loss", "params", "tokens", "flops")
    else:
        assert np.isfinite(points.loss).all() and (points.loss > 0).all()
        assert (points.n_params > 0).all() and (points.n_tokens > 0).all()
        assert np.isfinite(points.flops).all()  # derived as 6 N D: never a silent infinity


def test_flops_beyond_float64_are_named() -> None:
    with pytest.raises(DataError, match=r"6 x params x tokens = 6 x 1e\+200 x 1e\+200 is beyond a float64"):
        points_from_arrays([1e6, 1e200], [1e9, 1e200], [3.0, 2.0])


def test_load_points_from_each_format(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"params": [1e6, 1e7, 1e8], "samples": [1e9, 1e9, 1e10], "loss": [3.0, 2.7, 2.4]})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet")
    (tmp_path / "a.json").write_text(json.dumps({"points": frame.to_dict(orient="records")}))
    for name in ("a.csv", "a.parquet", "a.json"):
        p = load_points(tmp_path / name)
        assert p.n_tokens.tolist() == [1e9, 1e9, 1e10] and p.flops.tolist() == (6 * frame.params * frame.samples).tolist()
    (tmp_path / "b.csv").write_text("params,tokens\n1,2\n")
    with pytest.raises(DataError, match="no loss column"):
        load_points(tmp_path / "b.csv")
    with pytest.raises(InvalidArgumentError, match="unknown extension"):
        (tmp_path / "c.txt").write_text("x")
        load_points(tmp_path / "c.txt")
