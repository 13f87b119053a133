"""Reports: the self-contained HTML report of a search or profile, and model cards.

- :func:`write_report` / :func:`render_report`: ``frugal report RUN_ID|OUT_DIR``;
- :func:`write_model_card` / :func:`model_card`: ``frugal card RUN_ID``;
- the page functions ``frugal ui`` serves (:mod:`frugalml.report.html`).
"""

from frugalml.report._source import ReportSource, load_source
from frugalml.report.card import model_card, write_model_card
from frugalml.report.html import render_report, write_report, write_search_report

__all__ = ["ReportSource", "load_source", "model_card", "render_report", "write_model_card", "write_report",
           "write_search_report"]
