"""Drift statistics on known distributions, `monitor` on digits (same vs shifted), efficiency trends
from stored profiles, and `frugal monitor`'s exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from frugalml.errors import DataError, InvalidArgumentError
from frugalml.monitor import efficiency_trend, mmd_test, monitor, psi_categorical, psi_numeric
from frugalml.monitor._drift import column_drift


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
