"""The HTML report: every section of a real search, offline, and the same page from a run id or a directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from frugalml.errors import InvalidArgumentError, StoreError
from frugalml.report import load_source, render_report, write_report
from frugalml.report.html import render_search
from frugalml.store import open_store


def test_search_report_has_every_section_and_opens_offline(searched: dict) -> None:
    text = (searched["out"] / "report.html").read_text(encoding="utf-8")
    for anchor in ("front", "runoff", "verdict", "speed", "roofline", "subgroups", "energy", "candidates",
                   "environment"):
        assert f"id='{anchor}'" in text, anchor
    for div in ("fig-pareto", "fig-runoff", "fig-latency", "fig-throughput", "fig-roofline", "fig-subgroups"):
        assert f'id="{div}"' in text, div
    # plotly.js is inlined; no script, stylesheet or image is fetched from anywhere
    assert "Plotly" in text and len(text) > 3_000_000
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=['\"]https?://", text)
    # the figures carry the search's real numbers: every candidate's recipe text and the budgets
    summary = json.loads((searched["out"] / "summary.json").read_text())
    for candidate in summary["candidates"]:
        assert (candidate["recipe_text"] or "(unchanged)").replace(">", "&gt;") in text
    assert "quality budget" in text and "rotated" in text and "upright" in text
    assert "g CO2e per 1k items" in text and "world-average" in text


def test_summary_holds_what_the_report_draws(searched: dict) -> None:
    summary = json.loads((searched["out"] / "summary.json").read_text())
    assert set(summary["profiles"]) == {"baseline", "chosen"}
    for prof in summary["profiles"].values():
        assert prof["batch_sizes"] == [1, 4, 16, 32]  # edge-cpu measures 1 and 32; the report adds 4 and 16
        assert all(len(prof["latency_samples_ms"][str(b)]) >= 5 for b in prof["batch_sizes"])
        assert prof["roofline"]["layers"] and any(layer["time_ms"] for layer in prof["roofline"]["layers"])
    assert summary["reference"]["primary"] == "accuracy"
    assert set(summary["reference"]["by_group"]) == {"rotated", "upright"}
    assert summary["budgets"]["worst_group_drop"] == 0.05
    assert summary["carbon"]["source"] == "world-average" and summary["carbon"]["g_per_kwh"] == 475
    # each profile is a run in the store, inside the optimize run
    store = open_store(searched["url"])
    for run_id in summary["profile_runs"].values():
        assert store.get_run(run_id).kind == "profile"
        assert store.get_run(run_id).parent_id is not None


def test_report_from_run_id_and_from_directory_agree(searched: dict, tmp_path: Path) -> None:
    by_dir = write_report(searched["out"], tmp_path / "a.html")
    by_run = write_report(str(searched["first"]), tmp_path / "b.html", store=searched["url"])
    a, b = by_dir.read_text(), by_run.read_text()
    # the run page adds the run's own cost and date; the figures are the same
    for div in ("fig-pareto", "fig-latency", "fig-roofline", "fig-subgroups"):
        assert a.count(f'id="{div}"') == b.count(f'id="{div}"') == 1
    assert "This run itself" in b and "This run itself" not in a


def test_profile_and_other_runs_render(searched: dict) -> None:
    prof = load_source(searched["profile"], store=searched["url"])
    text = render_report(prof, plotly="/static/plotly.min.js")
    assert "Profile of zoo:digits-mlp" in text and 'id="fig-roofline"' in text and "Heaviest layers" in text
    assert "<script src='/static/plotly.min.js'>" in text and "Plotly.newPlot" in text
    gate = next(r for r in open_store(searched["url"]).list_runs(kind="gate"))
    assert "Budget verdicts" in render_report(load_source(gate.id, store=searched["url"]))


def test_search_without_profiles_says_so() -> None:
    summary = json.loads(Path(__file__).with_name("old_summary.json").read_text())
    text = render_search(summary, plotly="/static/plotly.min.js")
    assert "recorded no profiles" in text and 'id="fig-pareto"' in text


@pytest.mark.parametrize("target, error, match", [
    ("no/such/dir", InvalidArgumentError, "neither a run id nor"),
    ("12345", StoreError, "no such run"),
])
def test_bad_targets(searched: dict, target: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_source(target, store=searched["url"])


def test_failed_run_and_foreign_json_are_refused(searched: dict, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no result to report on .*truncated"):
        load_source(searched["failed"], store=searched["url"])
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(InvalidArgumentError, match="not a frugal search summary"):
        load_source(tmp_path / "x.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        load_source(tmp_path / "bad.json")
    with pytest.raises(InvalidArgumentError, match="without summary.json"):
        load_source(tmp_path)
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        write_report(searched["out"], tmp_path)


def test_hand_edited_json_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    # the file is the user's: a field deleted or retyped by hand is theirs to fix, named in one line
    from frugalml.report import write_model_card

    summary = json.loads(Path(__file__).with_name("old_summary.json").read_text())
    for candidate in summary["candidates"]:
        del candidate["recipe_text"]
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(InvalidArgumentError, match=r"looks like a search summary but is not shaped as frugal "
                                                   r"writes it \(no field 'recipe_text'"):
        write_report(tmp_path / "summary.json", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
    del summary["context"]
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(InvalidArgumentError, match="not shaped as frugal writes it .no field 'context'"):
        write_model_card(tmp_path, tmp_path / "card.md")
    evaluation = {"primary": "accuracy", "overall": "high", "task": "classification"}
    (tmp_path / "ev.json").write_text(json.dumps(evaluation))
    with pytest.raises(InvalidArgumentError, match="looks like an evaluation but is not shaped"):
        write_report(tmp_path / "ev.json", tmp_path / "e.html")


def test_search_report_shows_the_runoff_round_by_round() -> None:
    summary = json.loads(Path(__file__).with_name("old_summary.json").read_text())
    # #2 beat #3 in every round; #1 was slower on the median but faster in round 4, so it tied with #2
    # and, more accurate, was picked.
    summary["runoff"] = {
        "metric": "p95 latency (ms) at batch 1", "batch": 1, "rounds": 6, "round_s": 0.5,
        "orders": [[0, 1, 2], [2, 1, 0]] * 3, "trial_pick": 2, "pick": 1, "tied": [2, 1],
        "tie_note": "the fastest, #2, was not faster than #1 in every round, so quality decided among them",
        "finalists": [
            {"number": 2, "recipe_text": "quantize_dynamic", "quality": 0.90, "trial_cost": 1.0, "cost": 1.1,
             "by_round": [1.0, 1.1, 1.2, 1.5, 1.1, 1.0]},
            {"number": 1, "recipe_text": "export_onnx", "quality": 0.95, "trial_cost": 1.2, "cost": 1.2,
             "by_round": [1.2, 1.2, 1.3, 1.4, 1.2, 1.3]},
            {"number": 3, "recipe_text": "prune_structured", "quality": 0.97, "trial_cost": 1.3, "cost": 2.0,
             "by_round": [2.0, 2.1, 2.0, 1.9, 2.2, 2.0]}]}
    text = render_search(summary, plotly="/static/plotly.min.js")
    assert "id='runoff'" in text and 'id="fig-runoff"' in text and "href='#runoff'" in text
    section = text[text.index("id='runoff'"):text.index("</section>", text.index("id='runoff'"))]
    assert section.count("class='chosen'") == 1 and "<tr class='chosen'><td>#1</td>" in section
    assert "picked, tied with the fastest" in section and "the fastest, tied with others" in section
    assert "slower in every round" in section
    # the pairwise matrix: row #2 beat #1 in 5 of 6 rounds and #3 in all 6; #1 beat #2 in 1 of 6
    rows = re.findall(r"<tr><td>(#\d)</td><td class=num>(.*?)</td><td class=num>(.*?)</td><td class=num>(.*?)</td>",
                      section)
    assert rows == [("#2", "—", "5 of 6", "<b>6</b> of 6"), ("#1", "1 of 6", "—", "<b>6</b> of 6"),
                    ("#3", "0 of 6", "0 of 6", "—")]
    assert "p = 0.031" in section and "had ranked #2 first" in section


def test_compare_report_from_the_run_and_from_its_json(digits_mlp, tmp_path: Path) -> None:
    from frugalml.compress import ExportOnnx, compress
    from frugalml.measure import compare_latency

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    c = compare_latency([digits_mlp, compress(digits_mlp, [ExportOnnx()])], batch=4, rounds=4, round_s=0.05,
                        store=url)
    by_run = write_report(str(c.run_id), tmp_path / "run.html", store=url).read_text()
    (tmp_path / "c.json").write_text(json.dumps(c.to_dict()))
    source = load_source(tmp_path / "c.json")
    assert source.kind == "compare"
    by_file = render_report(source, plotly="/static/plotly.min.js")
    for text in (by_run, by_file):
        assert "Head to head at batch 4 on cpu" in text and "4 alternating rounds" in text
        for div in ("fig-rounds-p50", "fig-rounds-p95"):
            assert text.count(f'id="{div}"') == 1
        # one row per model, the fastest by p50 marked, at 1.00x of itself
        fastest = min(range(2), key=lambda i: c.contenders[i].p50_ms)
        assert text.count("<tr class='chosen'>") == 1 and f"<tr class='chosen'><td>#{fastest} " in text
        assert "1.00x" in text and "onnxruntime" in text and "torch" in text
        # the pairwise wins add up to the rounds in which the two differed (ties count for neither)
        wins = [int(w) for w in re.findall(r"(?:<b>)?(\d)(?:</b>)? of 4", text)]
        assert len(wins) == 2 and sum(wins) <= 4
    assert f"run #{c.run_id}" in by_run and "Configuration" in by_run and "python" in by_run.lower()
    assert "No environment was recorded" in by_file
