"""`report.html` for a search: one self-contained file (plotly's JavaScript inlined, no network).

It shows the quality-vs-cost plane with every candidate, the Pareto front and the chosen one, then
a table of every candidate with its budget checks, then the gate's verdict on the saved model.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

__all__ = ["write_search_report"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:2rem} table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5} .pass{color:#1a7f37} .fail{color:#cf222e} .muted{color:#666} code{font-size:.85em}
.chosen{background:#fff8c5}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _figure(summary: dict[str, Any]) -> str:
    import plotly.graph_objects as go

    cands = summary["candidates"]
    fig = go.Figure()
    groups = [("feasible", [c for c in cands if c["feasible"]], "#1a7f37"),
              ("misses a budget", [c for c in cands if not c["feasible"]], "#cf222e")]
    for label, rows, color in groups:
        fig.add_trace(go.Scatter(
            x=[c["cost"] for c in rows], y=[c["quality"] for c in rows], mode="markers", name=label,
            marker={"color": color, "size": 10, "symbol": ["diamond" if c["pareto"] else "circle" for c in rows]},
            text=[f"#{c['number']} {c['recipe_text']}" for c in rows], hovertemplate="%{text}<br>%{x:.4g}, %{y:.4f}"))
    front = sorted((c for c in cands if c["pareto"]), key=lambda c: c["cost"])
    fig.add_trace(go.Scatter(x=[c["cost"] for c in front], y=[c["quality"] for c in front], mode="lines",
                             name="Pareto front", line={"dash": "dot", "color": "#555"}))
    if summary["chosen"]:
        c = summary["chosen"]
        fig.add_trace(go.Scatter(x=[c["cost"]], y=[c["quality"]], mode="markers", name="chosen",
                                 marker={"size": 20, "symbol": "star", "color": "#d4a72c"}))
    fig.update_layout(xaxis_title=summary["objectives"][1], yaxis_title=summary["objectives"][0],
                      height=460, margin={"l": 60, "r": 20, "t": 20, "b": 50}, template="plotly_white")
    return fig.to_html(full_html=False, include_plotlyjs=True)


def write_search_report(result: Any, path: str | Path) -> Path:
    """Write the search's report; ``result`` is a SearchResult or its ``to_dict()``."""
    summary = result if isinstance(result, dict) else result.to_dict()
    chosen = summary["chosen"]
    parts = [(f"<!doctype html><html><head><meta charset='utf-8'><title>frugalml search {_esc(summary['study'])}"
              f"</title><style>{_STYLE}</style></head><body>"),
             f"<h1>frugalml search: {_esc(summary['config'].get('model'))} for {_esc(summary['context'])}</h1>"]
    if chosen:
        parts.append(f"<p>Chosen: <b>#{chosen['number']} {_esc(chosen['recipe_text'])}</b>: "
                     f"{_esc(summary['objectives'][0])} {chosen['quality']:.4f}, {_esc(summary['objectives'][1])} "
                     f"{chosen['cost']:.4g}. <span class='muted'>{_esc(summary['why'])}.</span></p>")
    else:
        closest = summary.get("closest")
        parts.append("<p class='fail'><b>No candidate meets every budget.</b> "
                     + (f"Closest: #{closest['number']} {_esc(closest['recipe_text'])}, missing "
                        f"{_esc(', '.join(summary['missed']))}." if closest else "") + "</p>")
    parts.append(f"<p class='muted'>{len(summary['candidates'])} candidates, study <code>{_esc(summary['study'])}"
                 f"</code>; diamonds are on the Pareto front.</p>")
    parts.append(_figure(summary))
    parts.append("<h2>Candidates</h2><table><tr><th>#</th><th>recipe</th><th>"
                 f"{_esc(summary['objectives'][0])}</th><th>{_esc(summary['objectives'][1])}</th><th>budgets</th></tr>")
    for c in sorted(summary["candidates"], key=lambda c: c["number"]):
        checks = "<br>".join(f"<span class='{'pass' if r['passed'] else 'fail'}'>{_esc(r['budget'])}: "
                             f"{'—' if r['measured'] is None else format(r['measured'], '.4g')} "
                             f"({'≤' if r['kind'] == 'max' else '≥'} {r['limit']:.4g})</span>" for r in c["checks"])
        cls = " class='chosen'" if chosen and c["number"] == chosen["number"] else ""
        parts.append(f"<tr{cls}><td>{c['number']}{' ◆' if c['pareto'] else ''}</td><td>{_esc(c['recipe_text'])}</td>"
                     f"<td>{c['quality']:.4f}</td><td>{c['cost']:.4g}</td><td>{checks}</td></tr>")
    parts.append("</table>")
    verdict = summary.get("verdict")
    if verdict:
        parts.append(f"<h2>Gate on the saved model: <span class='{'pass' if verdict['passed'] else 'fail'}'>"
                     f"{'pass' if verdict['passed'] else 'fail'}</span></h2><table><tr><th>budget</th><th>measured</th>"
                     "<th>limit</th><th>margin</th></tr>")
        for r in verdict["checks"]:
            parts.append(f"<tr><td>{_esc(r['budget'])}</td><td>{'—' if r['measured'] is None else format(r['measured'], '.4g')}"
                         f"</td><td>{'≤' if r['kind'] == 'max' else '≥'} {r['limit']:.4g} {_esc(r['unit'])}</td>"
                         f"<td class='{'pass' if r['passed'] else 'fail'}'>"
                         f"{'—' if r['margin'] is None else format(r['margin'], '.4g')}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    out = Path(path)
    out.write_text("".join(parts), encoding="utf-8")
    return out
