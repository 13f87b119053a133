"""`frugal ui`: a local web app over the run store (FastAPI), read-only.

Pages:
- ``/``: the runs, newest first, filtered by kind, status and name; tick two to compare;
- ``/runs/{id}``: a run's page: its report (optimize, profile) or its record;
- ``/compare?run=A&run=B``: two runs side by side: metric deltas and ratios, both search fronts on
  one plane, or both profiles' latency and throughput;
- ``/cost``: the cost of experimentation: runs, wall-clock and CPU time, energy and CO2e of every
  run in the store, by kind and by day.
JSON: ``/api/runs``, ``/api/runs/{id}``, ``/api/cost``; ``/healthz``. plotly.js is served from the
installed plotly package at ``/static/plotly.min.js``: the pages work with no network.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from frugalml.errors import FrugalError
from frugalml.report import _figures as F
from frugalml.report.html import esc, fmt, page, render_run, table

__all__ = ["create_app"]

PLOTLY_URL = "/static/plotly.min.js"


def _nav(store: Any) -> str:
    return ("<nav style='border-bottom:1px solid #ddd;padding-bottom:.5rem;margin-bottom:1rem'>"
            "<b>frugalml</b> &nbsp; <a href='/' id='nav-runs'>Runs</a><a href='/cost' id='nav-cost'>Cost of "
            f"experimentation</a><span class='muted'>{esc(store.safe_url)}</span></nav>")


def _headline(run: Any) -> str:
    """One line of what a run found, from its result (list page)."""
    r = run.result or {}
    if run.kind == "optimize" and r.get("chosen"):
        c = r["chosen"]
        return f"{esc(c.get('recipe_text') or '(unchanged)')}: {fmt(c['quality'])}, {fmt(c['cost'])}"
    if run.kind == "optimize" and "candidates" in r:
        return "<span class='fail'>no candidate met every budget</span>"
    if run.kind == "profile" and r.get("latency_ms"):
        b = sorted(r["latency_ms"], key=int)[0]
        return f"p50 {fmt(r['latency_ms'][b]['p50'], '.3g')} ms at batch {esc(b)} ({esc(r.get('runtime'))})"
    if run.kind in ("train", "federated"):
        from frugalml.train._report import train_headline

        return esc(train_headline(run))
    if run.kind == "evaluate":
        from frugalml.evaluate import evaluation_headline

        return esc(evaluation_headline(r))
    if run.kind == "compress":
        from frugalml.compress import compress_headline

        return esc(compress_headline(r))
    r = r.get("verdict") if run.kind == "gate" and isinstance(r.get("verdict"), dict) else r
    if run.kind == "gate" and "passed" in r:
        return "<span class='pass'>pass</span>" if r["passed"] else f"<span class='fail'>fail: {esc(', '.join(r.get('failed', [])))}</span>"
    return ""


def _runs_page(store: Any, *, kind: str | None, status: str | None, q: str | None, limit: int) -> str:
    runs = store.list_runs(kind=kind or None, status=status or None, name_contains=q or None, limit=limit,
                           with_result=True)  # results for the headline column
    costs = store.run_costs([r.id for r in runs])
    kinds = store.kinds()
    options = lambda values, current: "".join(  # noqa: E731
        f"<option value='{esc(v)}'{' selected' if v == current else ''}>{esc(v) or 'any'}</option>" for v in values)
    form = ("<form method='get' action='/' id='filters' style='margin:.5rem 0'>"
            f"kind <select name='kind' id='filter-kind'>{options(['', *kinds], kind or '')}</select> "
            f"status <select name='status' id='filter-status'>{options(['', 'succeeded', 'failed', 'running'], status or '')}"
            f"</select> name <input name='q' id='filter-q' value='{esc(q or '')}' size='18'> "
            f"<input type='hidden' name='limit' value='{limit}'><button type='submit' id='filter-apply'>Filter</button> "
            "<a href='/'>clear</a></form>")
    rows = []
    for r in runs:
        c = costs.get(r.id, {})
        status_cls = {"succeeded": "pass", "failed": "fail"}.get(r.status, "muted")
        rows.append([f"<input type='checkbox' name='run' value='{r.id}' class='pick' aria-label='compare run {r.id}'>",
                     f"<a href='/runs/{r.id}' class='run-link' id='run-{r.id}'>#{r.id}</a>", esc(r.kind), esc(r.name),
                     f"<span class='{status_cls}'>{esc(r.status)}</span>",
                     esc(r.created.strftime("%Y-%m-%d %H:%M")), fmt(r.duration_s, ".1f"),
                     fmt(c.get("run_energy"), ".4g"), _headline(r)])
    listing = ("<form method='get' action='/compare' id='compare-form'>"
               + table(["", "run", "kind", "name", "status", "started (UTC)", "seconds", "energy J", "result"], rows,
                       numeric=(6, 7))
               + "<button type='submit' id='compare-button'>Compare the two ticked runs</button></form>"
               if rows else "<p class='muted'>No runs match. Record some with <code>frugal profile</code>, "
               "<code>frugal optimize</code> or <code>frugal gate</code>.</p>")
    body = (f"<h1>Runs</h1>{form}<p class='muted'>{len(runs)} shown (newest first, at most {limit}).</p>{listing}")
    return page("frugalml runs", body, plotly=PLOTLY_URL, nav=_nav(store))


def _related(store: Any, run: Any) -> str:
    """Links to the run this one ran inside, and to the runs inside it."""
    parts = []
    if run.parent_id is not None:
        parts.append(f"<p>Ran inside <a href='/runs/{run.parent_id}'>run #{run.parent_id}</a>.</p>")
    children = store.list_runs(parent_id=run.id, limit=1000)
    if children:
        parts.append(table(["run", "kind", "name", "status", "seconds"], [
            [f"<a href='/runs/{c.id}' class='child-link'>#{c.id}</a>", esc(c.kind), esc(c.name), esc(c.status),
             fmt(c.duration_s, ".1f")] for c in reversed(children)], numeric=(4,)))
        parts[-1] = "<p>Runs inside this one:</p>" + parts[-1]
    return f"<section id='related'><h2>Related runs</h2>{''.join(parts)}</section>" if parts else ""


def _metric_rows(a: Any, b: Any) -> list[list[str]]:
    def key(m: Any) -> tuple[str, int | None, str]:
        return (m.name, m.batch, m.unit)

    ma, mb = {key(m): m.value for m in a.measurements}, {key(m): m.value for m in b.measurements}
    rows = []
    for k in sorted(set(ma) | set(mb), key=lambda k: (k[0], k[1] or 0)):
        va, vb = ma.get(k), mb.get(k)
        delta = vb - va if va is not None and vb is not None else None
        ratio = vb / va if va and vb is not None else None
        rows.append([esc(k[0]), esc(k[1] if k[1] is not None else ""), esc(k[2]), fmt(va), fmt(vb), fmt(delta),
                     f"{fmt(ratio, '.3g')}x" if ratio is not None and math.isfinite(ratio) else "—"])
    return rows


def _compare_page(store: Any, a: Any, b: Any) -> str:
    body = [f"<h1>Run #{a.id} vs run #{b.id}</h1>", table(
        ["", f"<a href='/runs/{a.id}'>#{a.id}</a>", f"<a href='/runs/{b.id}'>#{b.id}</a>"],
        [["kind", esc(a.kind), esc(b.kind)], ["name", esc(a.name), esc(b.name)],
         ["status", esc(a.status), esc(b.status)],
         ["started (UTC)", esc(a.created.strftime("%Y-%m-%d %H:%M")), esc(b.created.strftime("%Y-%m-%d %H:%M"))],
         ["seconds", fmt(a.duration_s, ".1f"), fmt(b.duration_s, ".1f")],
         ["result", _headline(a), _headline(b)]])]
    ra, rb = a.result or {}, b.result or {}
    if a.kind == b.kind == "optimize" and "candidates" in ra and "candidates" in rb:
        body.append("<h2>Both searches on one plane</h2>")
        if ra.get("objectives", [None, None])[1] != rb.get("objectives", [None, None])[1]:
            body.append(f"<p class='note'>The two searches minimise different costs ({esc(ra['objectives'][1])} vs "
                        f"{esc(rb['objectives'][1])}); the x axis mixes them.</p>")
        body.append(F.figure_html(F.fronts_figure({f"#{a.id}": ra, f"#{b.id}": rb}), "fig-fronts"))
        ca, cb = ra.get("chosen") or {}, rb.get("chosen") or {}
        if ca and cb:
            body.append(table(["chosen", f"#{a.id}", f"#{b.id}", "delta"], [
                ["recipe", esc(ca.get("recipe_text")), esc(cb.get("recipe_text")), ""],
                [esc(ra["objectives"][0]), fmt(ca["quality"]), fmt(cb["quality"]), fmt(cb["quality"] - ca["quality"])],
                [esc(ra["objectives"][1]), fmt(ca["cost"]), fmt(cb["cost"]), fmt(cb["cost"] - ca["cost"])]],
                numeric=(1, 2, 3)))
    if a.kind == b.kind == "profile" and ra.get("latency_ms") and rb.get("latency_ms"):
        profiles = {f"#{a.id}": ra, f"#{b.id}": rb}
        body.append("<h2>Latency and throughput</h2><div class='grid'><div>"
                    + F.figure_html(F.latency_figure(profiles), "fig-latency") + "</div><div>"
                    + F.figure_html(F.throughput_figure(profiles), "fig-throughput") + "</div></div>")
    body.append(f"<h2>Measurements</h2><p class='muted'>delta = #{b.id} − #{a.id}; ratio = #{b.id} / #{a.id}.</p>")
    rows = _metric_rows(a, b)
    body.append(table(["metric", "batch", "unit", f"#{a.id}", f"#{b.id}", "delta", "ratio"], rows, numeric=(1, 3, 4, 5, 6))
                if rows else "<p class='muted'>Neither run recorded measurements.</p>")
    return page(f"frugalml: #{a.id} vs #{b.id}", "".join(body), plotly=PLOTLY_URL, nav=_nav(store))


def _cost_page(store: Any) -> str:
    import plotly.graph_objects as go

    cost = store.experiment_cost()
    t = cost["total"]
    body = ["<h1>Cost of experimentation</h1>",
            f"<p id='cost-total'><b>{int(t['runs'])}</b> runs ({int(t['failed'])} failed): "
            f"<b>{t['wall_s'] / 3600:.2f} h</b> wall-clock, <b>{t['cpu_s'] / 3600:.2f} h</b> CPU, "
            f"<b>{t['energy_j'] / 3.6e6 * 1000:.3g} Wh</b>, <b>{fmt(t['co2e_g'], '.3g')} g CO2e</b>.</p>",
            f"<p class='note'>Energy sources: {esc(', '.join(cost['sources']) or 'none recorded')}. "
            "<code>estimate:…</code> is CPU time × watts per core (no hardware counter); <code>rapl</code> and "
            "<code>nvml</code> are counters. CO2e uses <code>$FRUGAL_REGION</code>'s grid or the world average. "
            f"{cost['nested_runs']} run(s) ran inside another (an optimize run's gate, compress and profile runs): their "
            f"time and energy are in their parent's. {cost['runs_without_cost']} run(s) predate cost accounting and "
            "count for time only.</p>"]
    kinds = cost["by_kind"]
    body.append("<h2>By kind</h2>" + table(
        ["kind", "runs", "failed", "wall-clock h", "CPU h", "energy Wh", "g CO2e"],
        [[esc(k), str(int(v["runs"])), str(int(v["failed"])), fmt(v["wall_s"] / 3600, ".3g"),
          fmt(v["cpu_s"] / 3600, ".3g"), fmt(v["energy_j"] / 3600, ".3g"), fmt(v["co2e_g"], ".3g")]
         for k, v in kinds.items()], numeric=(1, 2, 3, 4, 5, 6)))
    days = cost["by_day"]
    if days:
        fig = go.Figure(go.Bar(x=list(days), y=[v["energy_j"] / 3600 for v in days.values()], name="energy (Wh)",
                               marker_color="#0969da", text=[f"{int(v['runs'])} runs" for v in days.values()]))
        fig.update_layout(yaxis_title="energy (Wh)", height=320, template="plotly_white",
                          margin={"l": 60, "r": 20, "t": 20, "b": 50})
        body.append("<h2>By day (UTC)</h2>" + F.figure_html(fig, "fig-cost"))
    return page("frugalml: cost of experimentation", "".join(body), plotly=PLOTLY_URL, nav=_nav(store))


def _error_page(store: Any, status: int, message: str) -> Any:
    from fastapi.responses import HTMLResponse

    return HTMLResponse(page("frugalml: error", f"<h1>{status}</h1><p class='fail' id='error'>{esc(message)}</p>"
                             "<p><a href='/'>back to the runs</a></p>", plotly=PLOTLY_URL, nav=_nav(store)),
                        status_code=status)


def create_app(store: Any = None) -> Any:
    """The FastAPI app over ``store`` (a URL or Store; default store when None)."""
    try:
        from fastapi import FastAPI, Query, Request
        from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    except ImportError:
        raise FrugalError("ui", "fastapi", "FastAPI is not installed", "Run: pip install 'frugalml[ui]'.") from None
    from frugalml.store import Store, open_store

    opened = store if isinstance(store, Store) else open_store(store)
    import plotly

    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    app = FastAPI(title="frugalml", docs_url="/api/docs", redoc_url=None)
    app.state.store = opened

    @app.exception_handler(FrugalError)
    async def _frugal_error(request: Request, exc: FrugalError) -> Any:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=404 if "no such run" in str(exc) else 400)
        return _error_page(opened, 404 if "no such run" in str(exc) else 400, str(exc))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "store": opened.safe_url}

    @app.get(PLOTLY_URL)
    def plotly_static() -> Any:
        return FileResponse(plotly_js, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/", response_class=HTMLResponse)
    def runs(kind: str | None = None, status: str | None = None, q: str | None = None,
             limit: int = Query(100, ge=1, le=5000)) -> str:
        return _runs_page(opened, kind=kind, status=status, q=q, limit=limit)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(run_id: int) -> str:
        run = opened.get_run(run_id)
        text = render_run(run, plotly=PLOTLY_URL, nav=_nav(opened))
        return text.replace("</body>", _related(opened, run) + "</body>", 1)

    @app.get("/compare", response_class=HTMLResponse)
    def compare(run: list[int] = Query(default=[])) -> Any:
        if len(run) != 2:
            return _error_page(opened, 400, f"Compare takes exactly two runs; {len(run)} were given. Tick two runs "
                               "in the list, or open /compare?run=A&run=B.")
        older, newer = sorted(run)  # deltas read "what changed since": newer minus older
        return _compare_page(opened, opened.get_run(older), opened.get_run(newer))

    @app.get("/cost", response_class=HTMLResponse)
    def cost() -> str:
        return _cost_page(opened)

    @app.get("/api/runs")
    def api_runs(kind: str | None = None, status: str | None = None, q: str | None = None,
                 limit: int = Query(100, ge=1, le=5000)) -> list[dict[str, Any]]:
        records = opened.list_runs(kind=kind, status=status, name_contains=q, limit=limit)
        return [{k: v for k, v in r.to_dict().items() if k not in ("measurements", "artifacts", "events", "result")}
                for r in records]

    @app.get("/api/runs/{run_id}")
    def api_run(run_id: int) -> dict[str, Any]:
        return opened.get_run(run_id).to_dict()

    @app.get("/api/cost")
    def api_cost() -> dict[str, Any]:
        return opened.experiment_cost()
    return app
