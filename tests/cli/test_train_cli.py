"""`frugal train` and `frugal federated simulate`: output, config files, exit codes."""

from __future__ import annotations

import json
from pathlib import Path


def test_train_from_a_config_file_with_overrides(cli, tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("model: zoo:digits-mlp\ndata: zoo:digits\nmethod: head\nepochs: 5\n")
    code, out, err = cli(["train", "--config", str(config), "--epochs", "2", "--store", sqlite_url, "--json"])
    doc = json.loads(out)
    assert code == 0 and doc["method"] == "head" and doc["epochs_run"] <= 2 and doc["run_id"] == 1
    assert doc["trainable_fraction"] < 0.1 and doc["config"]["epochs"] == 2
    code, out, err = cli(["train", "--config", str(config), "--epochs", "1", "--dp", "--epsilon", "8", "--delta",
                          "0.5", "--store", sqlite_url, "-o", str(tmp_path / "out")])
    assert code == 0 and "privacy spent" in out and "epsilon" in out and "saved" in out
    assert "warning:" in err and "1/N" in err  # delta >= 1/N is allowed, loudly
    assert (tmp_path / "out" / "MODEL_CARD.md").is_file()


def test_usage_errors(cli, tmp_path: Path) -> None:
    for argv, needle in ((["train", "--epsilon", "3"], "--epsilon='given without --dp'"),
                         (["train", "--dp"], "--epsilon=None: is required with --dp"),
                         (["train", "--model", "zoo:digits-mlp", "--data", "zoo:digits", "--dp", "--epsilon", "0"],
                          "epsilon=0.0: must be a finite number > 0"),
                         (["train", "--method", "qlora"], "method="),
                         (["train", "--config", str(tmp_path / "none.yaml")], "no such file"),
                         (["federated", "simulate", "--clients", "2000", "--rounds", "1"], "fewer than 2 per client"),
                         (["federated", "simulate", "--strategy", "fedsgd"], "strategy='fedsgd'"),
                         (["federated", "simulate", "--dp", "--epsilon", "-1"], "epsilon=-1.0")):
        code, _, err = cli(argv)
        assert code == 2 and needle in err and "Traceback" not in err, (argv, err)


def test_dp_options_update_the_config_files_privacy(cli, tmp_path: Path, sqlite_url: str) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("model: zoo:digits-mlp\ndata: zoo:digits\nmethod: head\nepochs: 1\n"
                      "privacy: {epsilon: 8, delta: 1.0e-5, accountant: rdp}\n")
    code, out, err = cli(["train", "--config", str(config), "--dp", "--epsilon", "4", "--store", sqlite_url, "--json"])
    p = json.loads(out)["privacy"]
    assert code == 0 and (p["epsilon_target"], p["delta"], p["accountant"]) == (4.0, 1e-5, "rdp"), err
    code, out, err = cli(["train", "--config", str(config), "--dp", "--store", sqlite_url, "--json"])  # epsilon from the file
    assert code == 0 and json.loads(out)["privacy"]["epsilon_target"] == 8.0, err
