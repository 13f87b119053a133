"""`frugal evaluate` and the --text-column options: output, JSON keys, exit codes."""

from __future__ import annotations

import json


def test_evaluate_a_users_classifier_on_its_own_csv(cli, text_classifier, sqlite_url) -> None:
    model, csv = str(text_classifier["dir"]), str(text_classifier["csv"])
    argv = ["evaluate", model, "--data", csv, "--text-column", "sentence", "--label-column", "sentiment",
            "--group-column", "region", "--reference", model, "--bootstrap", "20", "--store", sqlite_url]
    code, out, _ = cli(argv)
    assert code == 0 and "accuracy *" in out and "By group (region)" in out
    assert "no group dropped" in out and "worst group drop" not in out  # the model against itself: no group is worse
    code, out, _ = cli([*argv, "--json"])
    doc = json.loads(out)
    assert code == 0 and doc["primary"] == "accuracy" and doc["n_items"] == 60 and doc["run_id"] is not None
    assert set(doc["by_group"]) == {"north", "south"} and doc["drop"]["accuracy"]["value"] == 0
    code, out, _ = cli(["runs", "list", "--kind", "evaluate", "--store", sqlite_url, "--json"])
    assert code == 0 and len(json.loads(out)) == 2
    code, out, _ = cli(["runs", "list", "--kind", "evaluate", "--store", sqlite_url])
    assert code == 0 and "accuracy " in out and ", drop 0; no group dropped" in out  # each run's one-line result


def test_report_of_an_evaluate_run_and_of_its_json(cli, text_classifier, sqlite_url, tmp_path) -> None:
    model, csv = str(text_classifier["dir"]), str(text_classifier["csv"])
    code, out, _ = cli(["evaluate", model, "--data", csv, "--text-column", "sentence", "--label-column", "sentiment",
                        "--group-column", "region", "--reference", model, "--bootstrap", "20", "--json",
                        "--store", sqlite_url])
    doc = json.loads(out)
    (tmp_path / "ev.json").write_text(out)
    pages = []
    for target, name in ((str(doc["run_id"]), "run.html"), (str(tmp_path / "ev.json"), "file.html")):
        code, _, err = cli(["report", target, "-o", str(tmp_path / name), "--store", sqlite_url])
        assert code == 0, err
        pages.append((tmp_path / name).read_text())
    for html in pages:
        assert "Evaluation of" in html and "Quality by subgroup" in html and "paired CI" in html
        assert "north" in html and "south" in html and "this model" in html
    assert "Environment" in pages[0] and "Environment" not in pages[1]  # only the stored run knows its machine
    from fastapi.testclient import TestClient

    from frugalml.ui import create_app

    ui = TestClient(create_app(sqlite_url)).get(f"/runs/{doc['run_id']}").text  # the UI's run page is the same
    assert "Quality by subgroup" in ui and "<script src='/static/plotly.min.js'>" in ui


def test_evaluate_and_column_options_usage_errors(cli, text_classifier) -> None:
    model, csv = str(text_classifier["dir"]), str(text_classifier["csv"])
    for argv, needle in ((["evaluate", model, "--data", csv], "text_column=None"),
                         (["evaluate", model, "--data", csv, "--text-column", "sentence"], "label_column=None"),
                         (["evaluate", model, "--data", csv, "--text-column", "sentence", "--label-column", "sentimnt"],
                          "Did you mean 'sentiment'"),
                         (["evaluate", "zoo:minilm", "--limit", "20"], "--reference"),
                         (["evaluate", model, "--bootstrap", "0"], "--bootstrap=0"),
                         (["profile", model, "--text-column", "sentence"], "--text-column='sentence': names a column "
                          "of --data"),
                         (["compare", model, model, "--data", csv, "--text-column", "body"], "text_column='body'")):
        code, _, err = cli(argv)
        assert code == 2 and needle in err and "Traceback" not in err, argv


def test_profile_reads_a_csvs_text_column(cli, text_classifier, sqlite_url) -> None:
    code, out, _ = cli(["profile", str(text_classifier["dir"]), "--data", str(text_classifier["csv"]), "--text-column",
                        "sentence", "--batch-sizes", "1", "--max-time", "0.2", "--no-layers", "--json",
                        "--store", sqlite_url])
    assert code == 0 and json.loads(out)["latency_ms"]["1"]["n"] > 0


def test_compress_takes_column_roles_and_separate_calibration_data(cli, text_classifier, tmp_path, sqlite_url) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("frugalml_recipe: 1\nsteps:\n  - technique: quantize_dynamic\n")
    base = ["compress", str(text_classifier["dir"]), "--recipe", str(recipe), "--store", sqlite_url,
            "--data", str(text_classifier["csv"]), "--text-column", "sentence"]
    code, _, err = cli([*base, "-o", str(tmp_path / "a"), "--calibration", "zoo:digits"])
    assert code == 2 and "text_column='sentence'" in err and "zoo:digits" in err
    code, out, _ = cli([*base, "-o", str(tmp_path / "b"), "--label-column", "sentiment", "--calibration",
                        str(text_classifier["csv"]), "--json"])
    doc = json.loads(out)
    assert code == 0 and "accuracy" in doc["metrics"] and "agreement" in doc["metrics"]
