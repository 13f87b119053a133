"""Reports: a single self-contained HTML file per search (more views come with `frugal ui`)."""

from frugalml.report.html import write_search_report

__all__ = ["write_search_report"]
