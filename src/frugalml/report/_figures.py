"""The report's plotly figures, each built from plain dicts (a search summary, a profile's to_dict()).

Every builder returns a ``plotly.graph_objects.Figure``; pages turn them into ``<div>``s with
:func:`figure_html`. Units are in the axis titles: ms, MB, mJ per item, items/s, FLOP/s, FLOP/byte.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "figure_html",
    "fronts_figure",
    "latency_figure",
    "pareto_figure",
    "roofline_figure",
    "rounds_figure",
    "subgroup_figure",
    "throughput_figure",
]

_GREEN, _RED, _GREY, _GOLD, _BLUE, _ORANGE = "#1a7f37", "#cf222e", "#555", "#d4a72c", "#0969da", "#bc4c00"
_MODEL_COLORS = {"baseline": _GREY, "chosen": _BLUE}
_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 40, "b": 50}}


def figure_html(fig: Any, div_id: str) -> str:
    """A ``<div>`` for ``fig``; the page loads plotly.js once (inlined, or from the UI's static route)."""
    return str(fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                           config={"displaylogo": False, "responsive": True}))


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def cost_axes(summary: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The Pareto panels: (key, axis title, value-of-candidate) for latency, size and energy."""
    batch = str(_cost_batch(summary))

    def latency(c: dict[str, Any]) -> float | None:
        est = ((c.get("measured") or {}).get("latency_p95_ms") or {}).get(batch)
        return _num(est.get("value")) if isinstance(est, dict) else None

    def size(c: dict[str, Any]) -> float | None:
        value = _num((c.get("measured") or {}).get("size_bytes"))
        return value / 1e6 if value is not None else None

    def energy(c: dict[str, Any]) -> float | None:
        value = _num(((c.get("measured") or {}).get("energy_j_per_item") or {}).get(batch))
        return value * 1e3 if value is not None else None

    return [("latency", f"p95 latency at batch {batch} (ms)", latency), ("size", "size on disk (MB)", size),
            ("energy", f"energy at batch {batch} (mJ/item)", energy)]


def _cost_batch(summary: dict[str, Any]) -> int:
    from frugalml.gate.contexts import get_context

    budgets = summary.get("budgets") or {}
    latency = budgets.get("latency_p95_ms")
    if isinstance(latency, dict) and latency.get("batch"):
        return int(latency["batch"])
    return get_context(summary["context"]).cost_batch


def quality_floor(summary: dict[str, Any]) -> float | None:
    """The lowest primary-metric value the quality budgets allow (higher-is-better metrics)."""
    budgets, reference = summary.get("budgets") or {}, summary.get("reference") or {}
    primary = reference.get("primary")
    ref = ((reference.get("overall") or {}).get(primary) or {}).get("value") if primary else None
    if not primary or not (reference.get("higher_is_better") or {}).get(primary, True):
        return None
    floors = []
    if budgets.get("min_quality") is not None:
        floors.append(float(budgets["min_quality"]))
    drop = budgets.get("quality_drop")
    if isinstance(drop, dict) and ref is not None:
        floors.append(ref * (1 - drop["max"]) if drop.get("relative") else ref - drop["max"])
    return max(floors) if floors else None


def _limits(summary: dict[str, Any]) -> dict[str, float]:
    budgets = summary.get("budgets") or {}
    out: dict[str, float] = {}
    if isinstance(budgets.get("latency_p95_ms"), dict):
        out["latency"] = float(budgets["latency_p95_ms"]["max"])
    if budgets.get("size_mb") is not None:
        out["size"] = float(budgets["size_mb"])
    if budgets.get("energy_mj_per_item") is not None:
        out["energy"] = float(budgets["energy_mj_per_item"])
    return out


def _front(points: list[tuple[float, float, dict[str, Any]]], higher_quality: bool) -> list[tuple[float, float]]:
    from frugalml.search.pareto import pareto_front

    if not points:
        return []
    idx = pareto_front([[q, x] for x, q, _ in points], [higher_quality, False])
    return sorted((points[i][0], points[i][1]) for i in idx)


def pareto_figure(summary: dict[str, Any]) -> Any:
    """Quality against latency, size and energy: every candidate, each plane's front, the baseline and
    the chosen model marked, budgets drawn as dashed limits."""
    from plotly.subplots import make_subplots

    import plotly.graph_objects as go

    axes = cost_axes(summary)
    higher = bool((summary.get("maximize") or [True])[0])
    fig = make_subplots(rows=1, cols=len(axes), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[title for _, title, _ in axes])
    chosen = (summary.get("chosen") or {}).get("number")
    floor, limits = quality_floor(summary), _limits(summary)
    cands = summary.get("candidates") or []
    for col, (key, title, value) in enumerate(axes, start=1):
        points = [(x, c["quality"], c) for c in cands if (x := value(c)) is not None and _num(c.get("quality")) is not None]
        for label, rows, color in (("meets every budget", [p for p in points if p[2]["feasible"]], _GREEN),
                                   ("misses a budget", [p for p in points if not p[2]["feasible"]], _RED)):
            fig.add_trace(go.Scatter(
                x=[p[0] for p in rows], y=[p[1] for p in rows], mode="markers", name=label, legendgroup=label,
                showlegend=col == 1, marker={"color": color, "size": 9, "opacity": 0.8},
                text=[f"#{p[2]['number']} {p[2]['recipe_text']}" for p in rows],
                hovertemplate="%{text}<br>%{x:.4g}, %{y:.4f}<extra></extra>"), row=1, col=col)
        front = _front(points, higher)
        fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines", name="Pareto front",
                                 legendgroup="front", showlegend=col == 1, line={"dash": "dot", "color": _GREY},
                                 hoverinfo="skip"), row=1, col=col)
        base = [p for p in points if not p[2].get("recipe", {}).get("steps")]
        if base:
            fig.add_trace(go.Scatter(x=[base[0][0]], y=[base[0][1]], mode="markers", name="baseline (unchanged)",
                                     legendgroup="baseline", showlegend=col == 1,
                                     marker={"symbol": "square", "size": 13, "color": "#000"},
                                     hovertemplate="baseline<br>%{x:.4g}, %{y:.4f}<extra></extra>"), row=1, col=col)
        pick = [p for p in points if p[2]["number"] == chosen]
        if pick:
            fig.add_trace(go.Scatter(x=[pick[0][0]], y=[pick[0][1]], mode="markers", name="chosen",
                                     legendgroup="chosen", showlegend=col == 1,
                                     marker={"symbol": "star", "size": 20, "color": _GOLD,
                                             "line": {"color": "#000", "width": 1}},
                                     hovertemplate="chosen<br>%{x:.4g}, %{y:.4f}<extra></extra>"), row=1, col=col)
        if floor is not None:
            label = {"annotation_text": "quality budget", "annotation_position": "bottom right"} if col == 1 else {}
            fig.add_hline(y=floor, line={"dash": "dash", "color": _RED, "width": 1}, row=1, col=col, **label)
        if key in limits:
            fig.add_vline(x=limits[key], line={"dash": "dash", "color": _RED, "width": 1}, row=1, col=col,
                          annotation_text=f"{key} budget", annotation_position="top left")
    primary = (summary.get("objectives") or ["quality"])[0]
    fig.update_yaxes(title_text=primary, row=1, col=1)
    fig.update_layout(height=430, legend={"orientation": "h", "y": -0.18}, **_LAYOUT)
    return fig


def fronts_figure(summaries: dict[str, dict[str, Any]]) -> Any:
    """Several searches' candidates and fronts on one quality-vs-cost plane (the UI's comparison)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    colors = [_BLUE, _ORANGE, _GREEN, _RED]
    x_title = y_title = None
    for i, (label, summary) in enumerate(summaries.items()):
        color = colors[i % len(colors)]
        cands = [c for c in summary.get("candidates") or [] if _num(c.get("quality")) is not None
                 and _num(c.get("cost")) is not None]
        maximize = summary.get("maximize") or [True, False]
        fig.add_trace(go.Scatter(x=[c["cost"] for c in cands], y=[c["quality"] for c in cands], mode="markers",
                                 name=f"{label} candidates", marker={"color": color, "size": 8, "opacity": 0.55},
                                 text=[f"{label} #{c['number']} {c['recipe_text']}" for c in cands],
                                 hovertemplate="%{text}<br>%{x:.4g}, %{y:.4f}<extra></extra>"))
        front = sorted((c for c in cands if c.get("pareto")), key=lambda c: c["cost"])
        fig.add_trace(go.Scatter(x=[c["cost"] for c in front], y=[c["quality"] for c in front], mode="lines+markers",
                                 name=f"{label} front", line={"color": color},
                                 marker={"symbol": "diamond", "size": 10, "color": color}, hoverinfo="skip"))
        if summary.get("chosen"):
            c = summary["chosen"]
            fig.add_trace(go.Scatter(x=[c["cost"]], y=[c["quality"]], mode="markers", name=f"{label} chosen",
                                     marker={"symbol": "star", "size": 18, "color": color,
                                             "line": {"color": "#000", "width": 1}}))
        x_title = x_title or (summary.get("objectives") or [None, "cost"])[1]
        y_title = y_title or (summary.get("objectives") or ["quality"])[0]
        if maximize[1]:
            fig.update_xaxes(autorange="reversed")  # better is always to the left
    fig.update_layout(xaxis_title=x_title, yaxis_title=y_title, height=420, **_LAYOUT)
    return fig


def latency_figure(profiles: dict[str, dict[str, Any]]) -> Any:
    """Latency distribution per batch size, one box per model (from the stored samples; log scale)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for label, prof in profiles.items():
        samples = prof.get("latency_samples_ms") or {}
        xs, ys = [], []
        for batch in sorted(samples, key=int):
            xs += [f"batch {batch}"] * len(samples[batch])
            ys += samples[batch]
        fig.add_trace(go.Box(x=xs, y=ys, name=f"{label}: {prof.get('model', '')} ({prof.get('runtime', '')})",
                             marker_color=_MODEL_COLORS.get(label, _ORANGE), boxpoints="outliers"))
    fig.update_layout(boxmode="group", yaxis_type="log", yaxis_title="latency per batch (ms)", height=380,
                      legend={"orientation": "h", "y": -0.2}, **_LAYOUT)
    return fig


def throughput_figure(profiles: dict[str, dict[str, Any]]) -> Any:
    """Sustained throughput (items/s) against batch size, one line per model."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for label, prof in profiles.items():
        tput = prof.get("throughput_items_per_s") or {}
        batches = sorted(tput, key=int)
        fig.add_trace(go.Scatter(x=[int(b) for b in batches], y=[tput[b] for b in batches], mode="lines+markers",
                                 name=f"{label}: {prof.get('model', '')}", line={"color": _MODEL_COLORS.get(label, _ORANGE)}))
    fig.update_layout(xaxis_type="log", xaxis_title="batch size", yaxis_title="throughput (items/s)", height=360,
                      legend={"orientation": "h", "y": -0.25}, **_LAYOUT)
    return fig


def roofline_figure(profiles: dict[str, dict[str, Any]]) -> Any:
    """Arithmetic intensity against achieved FLOP/s under the device's roof, per layer (where the
    runtime can time layers) and for the whole model at each batch size."""
    import numpy as np

    import plotly.graph_objects as go

    fig = go.Figure()
    intensities = [p["intensity"] for prof in profiles.values() for p in
                   list(prof["roofline"]["by_batch"].values()) + prof["roofline"]["layers"] if _num(p.get("intensity"))]
    drawn: set[tuple[float, float]] = set()
    for label, prof in profiles.items():  # one roof per precision (an INT8 graph runs under the INT8 peak)
        roof = prof["roofline"]
        peak, bandwidth = _num(roof.get("peak_flops_per_s")), _num(roof.get("bandwidth_bytes_per_s"))
        if not (peak and bandwidth) or (peak, bandwidth) in drawn:
            continue
        drawn.add((peak, bandwidth))
        lo = min([0.1, *intensities]) / 2
        hi = max([peak / bandwidth * 10, *intensities]) * 2
        xs = np.logspace(math.log10(lo), math.log10(hi), 200)
        fig.add_trace(go.Scatter(x=xs, y=np.minimum(peak, xs * bandwidth), mode="lines", name=(
            f"roof: {roof['device'].get('name', '')} {roof.get('precision', '')}"),
            line={"color": "#000", "width": 2, "dash": "solid" if len(drawn) == 1 else "dash"}, hoverinfo="skip"))
    symbols = {"baseline": "circle", "chosen": "diamond"}
    for label, prof in profiles.items():
        color = _MODEL_COLORS.get(label, _ORANGE)
        layers = [p for p in prof["roofline"]["layers"] if _num(p.get("achieved_flops_per_s"))]
        if layers:
            fig.add_trace(go.Scatter(
                x=[p["intensity"] for p in layers], y=[p["achieved_flops_per_s"] for p in layers], mode="markers",
                name=f"{label} layers (batch {prof['roofline']['batch']})",
                marker={"symbol": symbols.get(label, "circle"), "size": 7, "color": color, "opacity": 0.6},
                text=[f"{p['name']} ({p['kind']}) {p['time_ms']:.3g} ms" for p in layers],
                hovertemplate="%{text}<br>%{x:.3g} FLOP/B, %{y:.3g} FLOP/s<extra></extra>"))
        whole = [(b, p) for b, p in prof["roofline"]["by_batch"].items() if _num(p.get("achieved_flops_per_s"))]
        fig.add_trace(go.Scatter(
            x=[p["intensity"] for _, p in whole], y=[p["achieved_flops_per_s"] for _, p in whole],
            mode="markers+text", text=[f"b{b}" for b, _ in whole], textposition="top center",
            name=f"{label} whole model", marker={"symbol": symbols.get(label, "circle"), "size": 14, "color": color,
                                                 "line": {"color": "#000", "width": 1}},
            hovertemplate="whole model %{text}<br>%{x:.3g} FLOP/B, %{y:.3g} FLOP/s<extra></extra>"))
    fig.update_layout(xaxis_type="log", yaxis_type="log", xaxis_title="arithmetic intensity (FLOP/byte)",
                      yaxis_title="achieved (FLOP/s)", height=440, legend={"orientation": "h", "y": -0.2}, **_LAYOUT)
    return fig


def subgroup_figure(reference: dict[str, Any] | None, after: dict[str, Any] | None, *,
                    names: tuple[str, str]) -> Any | None:
    """The primary metric per subgroup before (the original model) and after compression; None when
    the evaluation data has no groups. ``names``: the two bars' legend entries."""
    import plotly.graph_objects as go

    if not after or not after.get("by_group"):
        return None
    primary = after["primary"]
    groups = sorted(after["by_group"], key=lambda g: -after.get("group_sizes", {}).get(g, 0))
    labels = [f"{g} (n={after.get('group_sizes', {}).get(g, '?')})" for g in groups]
    before = (after.get("reference_by_group") or (reference or {}).get("by_group") or {})
    fig = go.Figure()
    if before:
        fig.add_trace(go.Bar(x=labels, y=[before.get(g, {}).get(primary) for g in groups], name=names[0],
                             marker_color=_GREY))
    fig.add_trace(go.Bar(x=labels, y=[after["by_group"][g].get(primary) for g in groups], name=names[1],
                         marker_color=_BLUE))
    fig.update_layout(barmode="group", yaxis_title=primary, height=340, legend={"orientation": "h", "y": -0.25},
                      **_LAYOUT)
    return fig


def rounds_figure(series: list[tuple[str, list[float]]], orders: list[list[int]], y_title: str) -> Any:
    """A head-to-head race round by round: one line per contender (``series``: label and one value
    per round), so a machine that drifted shows as lines moving together, and a contender that is
    faster only on average shows as crossing lines. ``orders`` (the order each round ran, indices
    into ``series``) labels every point with its position in its round."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (label, values) in enumerate(series):
        hover = []
        for r, value in enumerate(values):
            order = orders[r] if r < len(orders) else []
            where = f", ran {order.index(i) + 1} of {len(order)}" if i in order else ""
            hover.append(f"{label}<br>round {r + 1}: {value:.4g}{where}")
        fig.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=values, mode="lines+markers", name=label,
                                 text=hover, hoverinfo="text"))
    fig.update_layout(xaxis_title="round (the order alternates: forward, then reversed)", yaxis_title=y_title,
                      xaxis={"dtick": 1}, height=360, legend={"orientation": "h", "y": -0.3}, **_LAYOUT)
    return fig
