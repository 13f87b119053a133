"""`frugal scaling`: plan / diagnose / fit output, JSON keys, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from frugalml.scaling import CONSTANTS


def test_plan_json_has_the_promised_keys(cli) -> None:
    code, out, _ = cli(["scaling", "plan", "--flops", "5.88e23", "--constants", "epoch", "--json"])
    doc = json.loads(out)
    assert code == 0 and {"n_params", "n_tokens", "tokens_per_param", "loss"} <= set(doc)
    assert 63e9 < doc["n_params"] < 77e9


def test_plan_warns_on_extrapolation_and_diagnose(cli) -> None:
    code, out, err = cli(["scaling", "plan", "--flops", "1e26"])
    assert code == 0 and "parameters N" in out and "extrapolation" in err
    code, out, err = cli(["scaling", "diagnose", "--params", "175e9", "--tokens", "300e9", "--loss", "2.5",
                          "--constants", "epoch"])
    assert code == 0 and out.startswith("data-limited") and "under_used_compute" in err


def test_fit_from_a_file(cli, tmp_path: Path) -> None:
    law = CONSTANTS["epoch"]
    n = np.repeat(np.logspace(6, 11, 4), 4)
    d = np.tile(np.logspace(8, 13, 4), 4)
    rows = [{"params": a, "tokens": b, "loss": float(law.predict(a, b))} for a, b in zip(n, d)]
    (tmp_path / "runs.json").write_text(json.dumps(rows))
    code, out, _ = cli(["scaling", "fit", str(tmp_path / "runs.json"), "--bootstrap", "5", "-o",
                        str(tmp_path / "law.json"), "--report", str(tmp_path / "r.html")])
    assert code == 0 and "alpha" in out and "fitted range" in out
    code, out, _ = cli(["scaling", "plan", "--flops", "1e20", "--constants", str(tmp_path / "law.json"), "--json"])
    assert code == 0 and json.loads(out)["law"] == str(tmp_path / "law.json") or json.loads(out)["law"] == "fitted"


def test_usage_errors(cli, tmp_path: Path) -> None:
    for argv, needle in ((["scaling", "plan"], "exactly one"),
                         (["scaling", "plan", "--flops", "1e21", "--constants", "nope"], "constants='nope'"),
                         (["scaling", "fit"], "either a data file or --run"),
                         (["scaling", "fit", str(tmp_path / "none.csv")], "is not a file")):
        code, _, err = cli(argv)
        assert code == 2 and needle in err and "Traceback" not in err, argv


def test_fit_names_a_text_cell_and_warns_on_a_flat_law(cli, tmp_path: Path) -> None:
    (tmp_path / "text.csv").write_text("params,tokens,loss\n1e6,1e9,3.0\n1e7,1e9,2.5\n1e8,1e9,abc\n1e9,1e9,2.0\n")
    code, _, err = cli(["scaling", "fit", str(tmp_path / "text.csv"), "--single", "params"])
    assert code == 2 and "row 2 = 'abc'" in err and "Traceback" not in err
    (tmp_path / "flat.csv").write_text("params,loss\n" + "".join(f"{n},3.0\n" for n in (1e6, 3e6, 1e7, 3e7, 1e8)))
    code, out, err = cli(["scaling", "fit", str(tmp_path / "flat.csv"), "--single", "params", "--bootstrap", "0"])
    assert code == 0 and "alpha" in out and "exponent is near 0" in err
