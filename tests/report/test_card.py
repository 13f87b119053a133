"""Model cards: Mitchell et al.'s sections from a real search, facts from the run, TODOs for the rest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from frugalml.errors import InvalidArgumentError
from frugalml.report import model_card, write_model_card
from frugalml.report.card import TODO

SECTIONS = ["Model details", "Intended use", "Factors", "Metrics", "Evaluation data", "Training data",
            "Quantitative analyses", "Efficiency", "Compression recipe", "Ethical considerations",
            "Caveats and recommendations"]


def test_card_written_beside_the_model_has_every_section(searched: dict) -> None:
    card = (searched["out"] / "MODEL_CARD.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", card, flags=re.M)
    assert headings == SECTIONS
    summary = json.loads((searched["out"] / "summary.json").read_text())
    chosen = summary["chosen"]
    ev = summary["verdict"]["measured"]["evaluation"]
    assert f"`{chosen['recipe_text']}`" in card
    # the quantitative analyses are the measured figures, by group, with CIs
    assert f"| rotated | {ev['group_sizes']['rotated']} |" in card
    assert f"{ev['overall']['accuracy']['value']:.4g} [{ev['overall']['accuracy']['low']:.4g}" in card
    assert "| baseline | 1 |" in card and "| chosen | 32 |" in card
    assert "frugalml_recipe: 1" in card and "technique:" in card


def test_card_never_invents_what_frugalml_cannot_know(searched: dict) -> None:
    card = (searched["out"] / "MODEL_CARD.md").read_text(encoding="utf-8")
    todos = [line for line in card.splitlines() if TODO in line]
    assert len(todos) >= 7
    for unknown in ("licence", "intended uses", "training data", "risks"):
        # each unknown appears only inside a TODO line
        lines = [line for line in card.splitlines() if unknown in line.lower() and not line.startswith("#")]
        assert lines and all(TODO in line for line in lines), unknown


def test_card_from_run_id_matches_the_run(searched: dict, tmp_path: Path) -> None:
    path = write_model_card(str(searched["second"]), tmp_path / "card.md", store=searched["url"])
    text = path.read_text()
    assert f"run #{searched['second']}" in text and '"max": 0.05' in text


def test_card_refuses_runs_without_a_chosen_model(searched: dict, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="is a profile run"):
        write_model_card(searched["profile"], tmp_path / "c.md", store=searched["url"])
    summary = json.loads((searched["out"] / "summary.json").read_text())
    with pytest.raises(InvalidArgumentError, match="chose no model"):
        model_card({**summary, "chosen": None})
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        write_model_card(summary, tmp_path)
