"""Points from a file or a sweep run, and the scaling report: loss vs N and vs D with the fit, isoFLOP
curves, and the compute-optimal frontier (one self-contained HTML file, plotly inlined)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import InvalidArgumentError
from frugalml.scaling._fit import Fit, Points, load_points, points_from_arrays
from frugalml.scaling._laws import TwoResourceLaw

__all__ = ["points_for", "render_scaling_report", "scaling_figures", "sweep_run_report", "write_scaling_report"]


def points_for(data: str | Path | None, run: int | None, store: Any = None) -> Points:
    """Points from a file, or from a ``scaling-sweep`` run's trained points; exactly one of the two."""
    if (data is None) == (run is None):
        raise InvalidArgumentError("data", data, "give either a data file or --run ID, not both or neither",
                                   "Pass a CSV / Parquet / JSON of runs, or --run with a scaling-sweep run id.")
    if data is not None:
        return load_points(data)
    from frugalml.store import open_store

    record = open_store(store).get_run(int(run))  # type: ignore[arg-type]
    if record.kind != "scaling-sweep" or not record.result or not record.result.get("points"):
        raise InvalidArgumentError("run", run, f"is a {record.kind} run without sweep points",
                                   "Pass the id of a 'scaling-sweep' run (frugal runs list --kind scaling-sweep).")
    pts = record.result["points"]
    return points_from_arrays([p["n_params"] for p in pts], [p["n_tokens"] for p in pts], [p["loss"] for p in pts],
                              [p["flops"] for p in pts], source=f"sweep run #{record.id}")


def scaling_figures(points: Points, fit: Fit | None) -> dict[str, Any]:
    """Plotly figures keyed by div id."""
    import plotly.graph_objects as go

    law = fit.law if fit is not None and isinstance(fit.law, TwoResourceLaw) else None
    colors = ["#0969da", "#bc4c00", "#1a7f37", "#8250df", "#cf222e", "#555", "#d4a72c"]
    layout = {"template": "plotly_white", "height": 400, "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
              "xaxis_type": "log"}
    figs: dict[str, Any] = {}
    for key, by, other, title in (("fig-loss-n", points.n_params, points.n_tokens, "parameters N"),
                                  ("fig-loss-d", points.n_tokens, points.n_params, "tokens D")):
        fig = go.Figure()
        for i, level in enumerate(np.unique(other)):
            sel = other == level
            order = np.argsort(by[sel])
            color = colors[i % len(colors)]
            label = f"{'D' if key == 'fig-loss-n' else 'N'} = {level:.3g}"
            fig.add_trace(go.Scatter(x=by[sel][order], y=points.loss[sel][order], mode="markers", name=label,
                                     marker={"color": color, "size": 8}))
            if law is not None:
                xs = np.logspace(np.log10(by.min()) - 0.3, np.log10(by.max()) + 0.3, 60)
                ys = law.predict(xs, level) if key == "fig-loss-n" else law.predict(level, xs)
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": color, "dash": "dot"},
                                         showlegend=False, hoverinfo="skip"))
        fig.update_layout(xaxis_title=title, yaxis_title="held-out loss", **layout)
        figs[key] = fig
    if law is not None:
        fig = go.Figure()
        c_lo, c_hi = np.log10(points.flops.min()), np.log10(points.flops.max())
        for i, c in enumerate(np.logspace(c_lo, c_hi, 5)):
            ns = np.logspace(np.log10(points.n_params.min()) - 0.5, np.log10(points.n_params.max()) + 0.5, 80)
            ls = law.predict(ns, c / (6 * ns))
            fig.add_trace(go.Scatter(x=ns, y=ls, mode="lines", name=f"C = {c:.2g}", line={"color": colors[i % 7]}))
            k = int(np.argmin(ls))
            fig.add_trace(go.Scatter(x=[ns[k]], y=[ls[k]], mode="markers", showlegend=False,
                                     marker={"symbol": "star", "size": 12, "color": colors[i % 7]}))
        fig.add_trace(go.Scatter(x=points.n_params, y=points.loss, mode="markers", name="measured runs",
                                 marker={"color": "#000", "size": 6, "opacity": 0.6}))
        fig.update_layout(xaxis_title="parameters N (along C = 6ND)", yaxis_title="loss", **layout)
        figs["fig-isoflop"] = fig
        from frugalml.scaling._plan import plan

        cs = np.logspace(c_lo - 1, c_hi + 2, 40)
        plans = [plan(law, flops=float(c)) for c in cs]
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=cs, y=[p.n_params for p in plans], mode="lines", name="N_opt"))
        fig.add_trace(go.Scatter(x=cs, y=[p.n_tokens for p in plans], mode="lines", name="D_opt"))
        fig.add_trace(go.Scatter(x=points.flops, y=points.n_params, mode="markers", name="runs: N",
                                 marker={"color": "#0969da", "opacity": 0.5}))
        fig.add_trace(go.Scatter(x=points.flops, y=points.n_tokens, mode="markers", name="runs: D",
                                 marker={"color": "#bc4c00", "opacity": 0.5}))
        rng = law.fitted_range.flops
        if rng:
            fig.add_vrect(x0=rng[0], x1=rng[1], fillcolor="#1a7f37", opacity=0.08, line_width=0,
                          annotation_text="fitted range", annotation_position="top left")
        fig.update_layout(xaxis_title="compute C (FLOPs)", yaxis_title="count", yaxis_type="log", **layout)
        figs["fig-frontier"] = fig
    return figs


def sweep_run_report(result: dict[str, Any], *, plotly: str = "inline", nav: str = "") -> str:
    """The scaling report of a stored ``scaling-sweep`` run's result (the UI's run page)."""
    pts = result["points"]
    points = points_from_arrays([p["n_params"] for p in pts], [p["n_tokens"] for p in pts], [p["loss"] for p in pts],
                                [p["flops"] for p in pts], source=f"sweep run #{result.get('run_id')}")
    fit = None
    if result.get("fit"):
        f = result["fit"]
        fit = Fit(TwoResourceLaw.from_dict(f["law"], origin="sweep"), f["goodness"], f["n_points"], f["n_boot"],
                  list(f.get("warnings", [])))
    return render_scaling_report(points, fit, plotly=plotly, nav=nav)


def write_scaling_report(points: Points, fit: Fit | None, path: str | Path) -> Path:
    """Write the scaling report (offline HTML) for ``points`` and their ``fit``."""
    from frugalml._cache import atomic_write_bytes

    out = Path(path)
    atomic_write_bytes(out, render_scaling_report(points, fit).encode("utf-8"))
    return out


def render_scaling_report(points: Points, fit: Fit | None, *, plotly: str = "inline", nav: str = "") -> str:
    from frugalml.report._figures import figure_html
    from frugalml.report.html import esc, fmt, page, table

    figs = scaling_figures(points, fit)
    body = [f"<h1>Scaling: {esc(points.source)}</h1>"]
    if fit is not None:
        law = fit.law
        names = ("E", "A", "B", "alpha", "beta") if isinstance(law, TwoResourceLaw) else ("A", "alpha", "B")
        body.append("<h2>Fitted law</h2>" + table(["constant", "value", "95% CI"], [
            [k, fmt(getattr(law, k)), f"[{fmt(law.ci[k][0])}, {fmt(law.ci[k][1])}]" if k in law.ci else "—"]
            for k in names], numeric=(1,)))
        g = fit.goodness
        body.append(f"<p>{fit.n_points} runs; R² of log loss {fmt(g['r2_log'])}, mean |relative error| "
                    f"{fmt(100 * g['mean_abs_rel_error'], '.2f')}%, max {fmt(100 * g['max_abs_rel_error'], '.2f')}%."
                    "</p>" + "".join(f"<p class='note'>{esc(w)}</p>" for w in fit.warnings))
    titles = {"fig-loss-n": "Loss against model size, per data size (dotted: the fit)",
              "fig-loss-d": "Loss against data size, per model size (dotted: the fit)",
              "fig-isoflop": "isoFLOP curves from the fit (stars: the optimum of each budget)",
              "fig-frontier": "The compute-optimal frontier: N_opt and D_opt against compute"}
    for key, fig in figs.items():
        body.append(f"<h2>{esc(titles[key])}</h2>" + figure_html(fig, key))
    body.append("<h2>Runs</h2>" + table(["params N", "tokens D", "FLOPs", "loss"], [
        [fmt(a), fmt(b), fmt(c), fmt(d)] for a, b, c, d in zip(points.n_params, points.n_tokens, points.flops,
                                                                 points.loss)], numeric=(0, 1, 2, 3)))
    return page("frugalml scaling", "".join(body), plotly=plotly, nav=nav)
