"""Drift statistics on known distributions, `monitor` on digits (same vs shifted), efficiency trends
from stored profiles, and `frugal monitor`'s exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from frugalml.errors import DataError, InvalidArgumentError
from frugalml.monitor import efficiency_trend, mmd_test, monitor, psi_categorical, psi_noise, psi_numeric
from frugalml.monitor._drift import column_drift, holm, missing_drift


def test_psi_reads_as_documented() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=20_000), rng.normal(size=20_000)
    assert psi_numeric(a, b) < 0.01  # same distribution: stable
    assert 0.1 < psi_numeric(a, b + 0.5) < 0.5  # half a standard deviation: a moderate-to-major shift
    assert psi_numeric(a, b + 2.0) > 1.0
    zeros = np.zeros(1000)  # a constant reference (an edge pixel): any move is a shift
    assert psi_numeric(zeros, zeros) == pytest.approx(0.0) and psi_numeric(zeros, zeros + 4) > 5
    cats = np.array(["x"] * 500 + ["y"] * 500)
    assert psi_categorical(cats, cats) == pytest.approx(0.0)
    assert psi_categorical(cats, np.array(["x"] * 500 + ["z"] * 500)) > 1.0  # an unseen category counts
    assert column_drift("f", a, b).level == "ok" and column_drift("f", a, b + 2.0).level == "alert"
    d = column_drift("c", cats, np.array(["x"] * 900 + ["y"] * 100))
    assert d.kind == "categorical" and d.test == "chi2" and d.level == "alert"


def test_integer_codes_are_compared_as_categories() -> None:
    # a 0/1 label or a 1-5 rating is a handful of values: chi-squared over them, not KS on "numbers"
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 2000)
    d = column_drift("label", labels, rng.integers(0, 2, 2000))
    assert d.kind == "categorical" and d.test == "chi2" and d.level == "ok"
    ratings = rng.choice([1, 2, 3, 4, 5], 2000).astype(float)  # floats holding integers (a CSV with blanks)
    moved = column_drift("rating", ratings, rng.choice([1, 2, 3, 4, 5], 2000, p=[.4, .3, .1, .1, .1]))
    assert moved.kind == "categorical" and moved.level == "alert"
    # more distinct values than DISCRETE_MAX, or fractions: numeric, as before
    assert column_drift("age", rng.integers(18, 90, 500), rng.integers(18, 90, 500)).kind == "numeric"
    assert column_drift("x", np.array([0.5, 1.0] * 100), np.array([0.5, 1.0] * 100)).kind == "numeric"


def test_ks_on_many_tied_rows_warns_nothing() -> None:
    # 2,000 rounded ages against 2,000: scipy's exact KS fails and it falls back with a RuntimeWarning
    # that reached the CLI's stderr; the asymptotic p-value is the intended one
    import warnings

    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = column_drift("age", rng.normal(40, 10, 2000).round(), rng.normal(45, 10, 2000).round())
    assert d.kind == "numeric" and d.level == "alert"


def test_few_rows_from_the_reference_do_not_alert() -> None:
    # 30 rows drawn from the reference's own distribution: PSI's no-drift value there is ~0.3, above
    # the 0.25 band (with a 1e-4 share floor three draws in four alerted); the level must follow the test
    rng = np.random.default_rng(3)
    cats = np.array(list("abcdefgh"))
    levels = [column_drift("x", rng.normal(size=500), rng.normal(size=30)).level for _ in range(100)]
    levels += [column_drift("c", rng.choice(cats, 500), rng.choice(cats, 30)).level for _ in range(100)]
    assert levels.count("alert") <= 6 and levels.count("warn") <= 12  # alpha = 0.01: ~2 false alerts
    d = column_drift("x", rng.normal(size=500), rng.normal(size=30))
    assert d.details["psi_noise"] == pytest.approx(psi_noise(10, 500, 30)) == pytest.approx(9 * (1 / 500 + 1 / 30))
    # the same few rows, really moved, still alert: the test confirms it
    assert column_drift("x", rng.normal(size=500), rng.normal(size=30) + 1.5).level == "alert"
    # many rows: a tiny significant shift is not material (PSI < 0.1)
    big = column_drift("x", rng.normal(size=50_000), rng.normal(size=50_000) + 0.05)
    assert big.p_value < 0.01 and big.psi < 0.1 and big.level == "ok"


def test_many_columns_share_one_false_alert_rate() -> None:
    # 64 columns of 40 rows, none drifted: at alpha 0.01 each, some column alerted in about half the
    # batches; Holm's adjustment keeps the chance of any alert in a batch at alpha
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(1000, 64))
    raw_batches = holm_batches = 0
    for _ in range(20):
        cur = rng.normal(size=(40, 64))
        checks = [column_drift(f"x{j}", ref[:, j], cur[:, j]) for j in range(64)]
        raw_batches += any(c.p_value < 0.01 for c in checks)
        adjusted = holm(checks, 0.01)
        holm_batches += any(c.level == "alert" for c in adjusted)
        assert all(c.details["p_holm"] >= c.p_value for c in adjusted)
    assert raw_batches >= 4 and holm_batches <= 2
    moved = [column_drift("x0", ref[:, 0], rng.normal(size=40) + 2.0)] + checks[1:]
    assert holm(moved, 0.01)[0].level == "alert"  # a real shift still stands out


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=30))
def test_holm_adjustment_properties(ps: list[float]) -> None:
    from frugalml.monitor import FeatureDrift

    checks = [FeatureDrift(f"x{i}", "numeric", 0.5, "ks", 0.0, p) for i, p in enumerate(ps)]
    adjusted = [c.details["p_holm"] for c in holm(checks, 0.05)]
    assert all(p <= a <= 1.0 for p, a in zip(ps, adjusted))  # never below the raw p, never above 1
    for i, j in zip(*np.triu_indices(len(ps), 1)):  # the order of the raw p-values is kept
        if ps[i] < ps[j]:
            assert adjusted[i] <= adjusted[j]
    assert min(adjusted) == pytest.approx(min(1.0, min(ps) * len(ps)))  # the smallest: Bonferroni


def test_missing_values_are_a_check_of_their_own(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400), "label": rng.integers(0, 2, 400)})
    cur = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})  # unlabelled, like production
    cur.loc[::3, "a"] = np.nan  # a third of 'a' goes missing; its present values are unchanged
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_csv(tmp_path / "cur.csv", index=False)
    r = monitor(tmp_path / "ref.csv", tmp_path / "cur.csv", label_column="label")
    by = {f.feature: f for f in r.features}
    assert set(by) == {"a (missing)", "a", "b"}  # 'b' has no missing value on either side: no such row
    gone = by["a (missing)"]
    assert gone.kind == "missing" and gone.level == "alert" and gone.details["reference_share"] == 0
    assert gone.details["current_share"] == pytest.approx(134 / 400)
    assert by["a"].level == "ok" and by["b"].level == "ok" and r.alerts == ["a (missing)"]
    assert any("no 'label' column" in n for n in r.notes)
    same = missing_drift("z", 40, 400, 41, 400)
    assert same.level == "ok" and same.p_value > 0.5


def test_a_column_missing_from_the_current_data_alerts(tmp_path: Path, digits_files) -> None:
    ref, same, _ = digits_files
    frame = pd.read_csv(same).drop(columns=["px30", "px31"]).assign(extra=1)
    frame.to_csv(tmp_path / "cur.csv", index=False)
    r = monitor(ref, tmp_path / "cur.csv", label_column="label")
    assert r.missing_columns == ["px30", "px31"]
    assert r.alerts == ["px30 (column missing)", "px31 (column missing)"]
    assert any("extra" in n for n in r.notes) and r.to_dict()["missing_columns"] == ["px30", "px31"]
    assert monitor(ref, tmp_path / "cur.csv", label_column="label", columns=["px0"]).alerts == []  # chose


def test_mmd_separates_shifted_embeddings() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(300, 16))
    same_stat, same_p = mmd_test(ref, rng.normal(size=(300, 16)), permutations=100)
    moved_stat, moved_p = mmd_test(ref, rng.normal(size=(300, 16)) + 0.5, permutations=100)
    assert same_p > 0.05 and moved_p < 0.02 and moved_stat > same_stat


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from frugalml.datasets import load_dataset

    f = load_dataset("zoo:digits").frame.drop(columns="split")
    tmp = tmp_path_factory.mktemp("monitor")
    ref, same, moved = tmp / "ref.csv", tmp / "same.csv", tmp / "moved.csv"
    f.iloc[::2].to_csv(ref, index=False)
    f.iloc[1::2].to_csv(same, index=False)
    shifted = f.iloc[1::2].copy()
    cols = [f"px{i}" for i in range(20, 40)]
    shifted[cols] = np.clip(shifted[cols] + 4, 0, 16)
    shifted.to_csv(moved, index=False)
    return ref, same, moved


def test_monitor_same_vs_shifted(digits_files, store_url: str) -> None:
    ref, same, moved = digits_files
    r = monitor(ref, same, model="zoo:digits-mlp", label_column="label", store=store_url)
    assert r.alerts == [] and len(r.features) == 65 and r.predictions is not None
    assert r.predictions.kind == "categorical" and r.predictions.level == "ok"
    assert "a trend needs 2" in r.efficiency["note"]
    m = monitor(ref, moved, model="zoo:digits-mlp", label_column="label", store=store_url)
    flagged = {f.feature for f in m.features if f.level == "alert"}
    assert flagged <= {f"px{i}" for i in range(20, 40)} and len(flagged) >= 15  # only the shifted pixels
    json.dumps(m.to_dict())  # JSON-ready


def test_monitor_bad_input(digits_files, tmp_path: Path) -> None:
    ref, same, _ = digits_files
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(other, index=False)
    with pytest.raises(DataError, match="shares no column"):
        monitor(ref, other)
    with pytest.raises(DataError, match="not in both"):
        monitor(ref, same, columns=["nope"])
    with pytest.raises(InvalidArgumentError, match="alpha"):
        monitor(ref, same, alpha=2)
    with pytest.raises(DataError, match=r"^current=.*no such file"):
        monitor(ref, tmp_path / "missing.csv")
    with pytest.raises(DataError, match=r"^reference=.*no such built-in dataset"):
        monitor("zoo:nope", same)


def test_efficiency_trend_from_stored_profiles(store_url: str) -> None:
    from frugalml.measure import profile

    for _ in range(2):
        profile("zoo:digits-mlp", batch_sizes=[1], max_time_s=0.1, store=store_url, energy_min_s=0.05)
    t = efficiency_trend("zoo:digits-mlp", store=store_url)
    assert len(t["runs"]) == 2 and all(p["p50_ms"] > 0 for p in t["runs"]) and "p50_ms_change" in t
    strict = efficiency_trend("zoo:digits-mlp", store=store_url, tolerance=-1.0)  # any latency counts as worse
    assert strict["regressions"] and strict["regressions"][0].startswith("p50 latency")


def test_cli_monitor_exit_codes(cli, digits_files) -> None:
    ref, same, moved = digits_files
    code, out, _ = cli(["monitor", "--reference", str(ref), "--current", str(same), "--label-column", "label"])
    assert code == 0 and "no alert" in out
    code, out, _ = cli(["monitor", "--reference", str(ref), "--current", str(moved), "--label-column", "label",
                        "--json"])
    assert code == 1 and json.loads(out)["alerts"]
    code, _, err = cli(["monitor", "--reference", str(ref), "--current", "/no/such.csv"])
    assert code == 2 and "no such file" in err
    unlabelled = Path(same).with_name("unlabelled.csv")
    pd.read_csv(same).drop(columns=["label", "px5"]).to_csv(unlabelled, index=False)
    code, out, _ = cli(["monitor", "--reference", str(ref), "--current", str(unlabelled), "--label-column", "label"])
    assert code == 1 and re.search(r"columns missing from \S*unlabelled\.csv: px5", " ".join(out.split()))
    assert "labels not compared" in out
