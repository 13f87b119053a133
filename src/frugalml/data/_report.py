"""Report sections for the data commands' stored runs (the run page of `frugal ui` and `frugal report`):
active-learning curves per strategy, and accuracy against the fraction of training data kept."""

from __future__ import annotations

from typing import Any

__all__ = ["data_run_sections"]


def _learning_curves(result: dict[str, Any]) -> Any:
    """Test accuracy against labels, one line per (strategy, seed); the target as a dashed line."""
    import plotly.graph_objects as go

    from frugalml.report._figures import _LAYOUT

    fig = go.Figure()
    palette = ["#0969da", "#bc4c00", "#1a7f37", "#8250df", "#d4a72c", "#555"]
    for i, (strategy, curves) in enumerate(result.get("curves", {}).items()):
        color = "#555" if strategy == "random" else palette[i % len(palette)]
        for j, curve in enumerate(curves):
            fig.add_trace(go.Scatter(x=[p[0] for p in curve], y=[p[1] for p in curve], mode="lines",
                                     name=strategy, legendgroup=strategy, showlegend=j == 0,
                                     line={"color": color, "width": 1.5, "dash": "dot" if strategy == "random" else
                                           "solid"}, opacity=0.8))
    fig.add_hline(y=result["target"], line_dash="dash", line_color="#cf222e",
                  annotation_text=f"target {result['target']:.4f}", annotation_position="bottom right")
    fig.update_layout(xaxis_title="labels", yaxis_title="test accuracy", height=420,
                      legend={"orientation": "h", "y": -0.2}, **_LAYOUT)
    return fig


def _accuracy_vs_kept(result: dict[str, Any]) -> Any:
    """Mean test accuracy (± one standard deviation over seeds) against the fraction kept."""
    import plotly.graph_objects as go

    from frugalml.report._figures import _LAYOUT

    fig = go.Figure()
    everything = result["accuracy"]["all"]["1.0"]["mean"]
    names = [result["method"]] + (["random"] if result["method"] != "random" else [])  # random: its own baseline
    for name, color in zip(names, ("#0969da", "#555")):
        series = result["accuracy"].get(name)
        if not series:
            continue
        keys = sorted(series, key=float)
        fig.add_trace(go.Scatter(x=[float(k) for k in keys] + [1.0], y=[series[k]["mean"] for k in keys] + [everything],
                                 error_y={"type": "data", "array": [series[k]["std"] for k in keys] + [0.0]},
                                 mode="lines+markers", name=name, line={"color": color}))
    fig.update_layout(xaxis_title="fraction of training rows kept", yaxis_title="test accuracy", xaxis_tickformat=".0%",
                      height=400, legend={"orientation": "h", "y": -0.2}, **_LAYOUT)
    return fig


def data_run_sections(run: Any) -> list[str]:
    """HTML sections for a ``simulate-al`` or ``prune-data`` run; empty for other runs."""
    from frugalml.report._figures import figure_html
    from frugalml.report.html import esc, fmt, table

    result = run.result or {}
    if run.kind == "simulate-al" and result.get("curves"):
        rows = []
        for strategy in sorted(result["labels_needed"], key=lambda s: result["mean_labels_needed"].get(s) or 1e18):
            saving = result["savings_vs_random"].get(strategy)
            rows.append([esc(strategy), fmt(result["mean_labels_needed"].get(strategy), ".0f"),
                         esc(" ".join("-" if n is None else str(n) for n in result["labels_needed"][strategy])),
                         "" if strategy == "random" else fmt(None if saving is None else 100 * saving, ".0f")])
        return [f"<h2>Labels needed to reach {fmt(result['target'])} ({fmt(100 * result['target_fraction'], '.0f')}% "
                f"of {fmt(result['full_accuracy'])}, every label)</h2>"
                + table(["strategy", "mean", "per seed", "% fewer than random"], rows, numeric=(1, 3)),
                "<h2>Learning curves</h2>" + figure_html(_learning_curves(result), "fig-al-curves")]
    if run.kind == "prune-data" and result.get("accuracy"):
        method, acc = result["method"], result["accuracy"]
        everything = acc["all"]["1.0"]["mean"]
        rows = [[f"{float(k):.0%}", f"{n:,}", fmt(acc[method][k]["mean"]),
                 fmt(acc["random"][k]["mean"]) if "random" in acc and method != "random" else "—",
                 fmt(100 * (acc[method][k]["mean"] - everything), "+.2f")] for k, n in result["kept_rows"].items()]
        return [f"<h2>Accuracy by fraction kept ({esc(method)}; all rows: {fmt(everything)})</h2>"
                + table(["kept", "rows", esc(method), "random", "points vs all"], rows, numeric=(1, 2, 3, 4)),
                "<h2>Accuracy against data kept</h2>" + figure_html(_accuracy_vs_kept(result), "fig-prune")]
    return []
