"""HTML reports: one self-contained page per search, profile, comparison or evaluation, and the run pages `frugal ui`
serves.

A search report (what ``frugal optimize`` writes as ``report.html`` and ``frugal report`` rebuilds)
shows, in order: the chosen candidate and why; quality against latency, size and energy with the
Pareto fronts, the baseline, the chosen model and the budgets; the gate's verdict; latency
distributions and throughput per batch size; the per-layer roofline; quality by subgroup before and
after; energy and CO2e; every candidate's recipe; the environment.

``plotly`` chooses how the page gets plotly.js: ``"inline"`` embeds it (a file that opens offline,
about 5 MB), or a URL (the UI serves it once from ``/static``). Nothing is ever fetched from a CDN.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from frugalml._cache import atomic_write_bytes
from frugalml.report import _figures as F
from frugalml.report._source import ReportSource, load_source

__all__ = ["page", "render_compare", "render_profile", "render_report", "render_run", "render_search",
           "write_report", "write_search_report"]

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem auto;max-width:1180px;color:#222;padding:0 1rem}
h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:2.2rem;border-bottom:1px solid #eee;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin:.5rem 0}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5} td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1a7f37} .fail{color:#cf222e} .muted{color:#666} code{font-size:.85em} .chosen{background:#fff8c5}
.note{background:#f6f8fa;border-left:3px solid #999;padding:.4rem .7rem;font-size:.88rem}
nav a{margin-right:1rem} .grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
@media(max-width:900px){.grid{grid-template-columns:1fr}}
"""


# ----------------------------------------------------------------------------- helpers
def esc(value: Any) -> str:
    return html.escape(str(value))


def fmt(value: Any, spec: str = ".4g", dash: str = "—") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return dash
    return format(value, spec)


def si(value: Any, unit: str = "") -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".strip()


def table(headers: Iterable[str], rows: Iterable[Iterable[Any]], *, numeric: Iterable[int] = (),
          row_class: Iterable[str] | None = None) -> str:
    """Cells are HTML already (escape text with :func:`esc`)."""
    nums = set(numeric)
    head = "".join(f"<th{' class=num' if i in nums else ''}>{h}</th>" for i, h in enumerate(headers))
    body = []
    classes = list(row_class) if row_class is not None else None
    for r, row in enumerate(rows):
        cls = f" class='{classes[r]}'" if classes and classes[r] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td{' class=num' if i in nums else ''}>{c}</td>"
                                            for i, c in enumerate(row)) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _plotly_script(plotly: str) -> str:
    if plotly == "inline":
        from plotly.offline import get_plotlyjs

        return f"<script type='text/javascript'>{get_plotlyjs()}</script>"
    return f"<script src='{esc(plotly)}'></script>"


def page(title: str, body: str, *, plotly: str = "inline", nav: str = "") -> str:
    """A whole HTML document around ``body``."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'><style>{STYLE}</style>"
            f"{_plotly_script(plotly)}</head><body>{nav}{body}</body></html>\n")


def _section(title: str, anchor: str, content: str) -> str:
    return f"<section id='{anchor}'><h2>{esc(title)}</h2>{content}</section>"


def _check_rows(checks: list[dict[str, Any]]) -> str:
    rows = []
    for r in checks:
        measured = fmt(r.get("measured"))
        if r.get("low") is not None and r.get("high") is not None:
            measured += f" <span class='muted'>[{fmt(r['low'])}, {fmt(r['high'])}]</span>"
        verdict = "pass" if r["passed"] else "fail"
        note = f" <span class='muted'>({esc(r['note'])})</span>" if r.get("note") else ""
        rows.append([esc(r["budget"]), measured, f"{'≤' if r['kind'] == 'max' else '≥'} {fmt(r['limit'])} "
                     f"{esc(r.get('unit', ''))}", fmt(r.get("margin")), f"<span class='{verdict}'>{verdict}</span>{note}"])
    return table(["budget", "measured [95% CI]", "limit", "margin", "result"], rows, numeric=(1, 3))


def _carbon(data: dict[str, Any]) -> tuple[float | None, str]:
    carbon = data.get("carbon") or {}
    if carbon.get("g_per_kwh") is not None:
        return float(carbon["g_per_kwh"]), str(carbon.get("source", ""))
    try:
        from frugalml.measure.energy import default_carbon_intensity

        return default_carbon_intensity()
    except Exception:  # noqa: BLE001 - a bad $FRUGAL_REGION must not break a report
        return None, "unknown"


# ----------------------------------------------------------------------------- sections
def _energy_section(profiles: dict[str, dict[str, Any]], carbon: tuple[float | None, str],
                    run: Any = None) -> str:
    g_per_kwh, where = carbon
    rows = []
    for label, prof in profiles.items():
        for b in sorted(prof.get("energy_j_per_item") or {}, key=int):
            j = prof["energy_j_per_item"][b]
            co2 = j * 1000 / 3.6e6 * g_per_kwh if g_per_kwh is not None else None
            rows.append([esc(label), esc(b), fmt(j * 1e3, ".4g"), fmt(co2, ".3g"), esc(prof.get("energy_source", ""))])
    sources = {prof.get("energy_note", "") for prof in profiles.values()}
    out = table(["model", "batch", "energy (mJ/item)", "g CO2e per 1k items", "source"], rows, numeric=(1, 2, 3))
    out += (f"<p class='note'>Energy: {esc('; '.join(s for s in sources if s))}. CO2e at "
            f"{fmt(g_per_kwh, '.0f')} g CO2e/kWh ({esc(where)}; set <code>FRUGAL_REGION</code> to a country "
            "code for its grid).</p>")
    if run is not None:
        cost = {m.name: m for m in run.measurements if m.name.startswith("run_")}
        if cost:
            out += ("<p>This run itself: " + ", ".join(
                f"{esc(name[4:].replace('_', ' '))} {fmt(m.value, '.4g')} {esc(m.unit)}" for name, m in cost.items())
                + f" <span class='muted'>({esc(', '.join(sorted({m.source for m in cost.values()})))})</span>, "
                f"{fmt(run.duration_s, '.0f')} s wall-clock.</p>")
    return out


def _env_section(env: dict[str, Any]) -> str:
    if not env:
        return "<p class='muted'>No environment was recorded.</p>"
    rows = [[esc(k), esc(v if not isinstance(v, (dict, list)) else json.dumps(v))] for k, v in env.items()
            if k != "libraries"]
    libs = env.get("libraries") or {}
    if libs:
        rows.append(["libraries", esc(", ".join(f"{k} {v}" for k, v in libs.items() if v))])
    return table(["", ""], rows)


# How the two models of a subgroup comparison are named: (legend before, legend after, column before,
# column after, the reference in prose). A search compares the original with the chosen model; an
# evaluate run compares its model with the reference it was given.
_SEARCH_NAMES = ("before (original)", "after (chosen)", "before", "after", "original")
_EVALUATE_NAMES = ("reference", "this model", "reference", "this model", "reference")


def _subgroup_section(reference: dict[str, Any] | None, after: dict[str, Any] | None, *,
                      names: tuple[str, str, str, str, str] = _SEARCH_NAMES) -> str:
    if not after:
        return "<p class='muted'>The chosen model was not evaluated.</p>"
    primary = after["primary"]
    overall = after["overall"].get(primary, {})
    drop = (after.get("drop") or {}).get(primary) or {}
    against = (f"; {names[4]} {fmt((after.get('reference') or {}).get(primary))}; drop {fmt(drop.get('value'))} "
               f"<span class='muted'>[{fmt(drop.get('low'))}, {fmt(drop.get('high'))}]</span>") if drop else ""
    parts = [f"<p>Overall {esc(primary)}: {fmt(overall.get('value'))} "
             f"<span class='muted'>[{fmt(overall.get('low'))}, {fmt(overall.get('high'))}]</span>{against} "
             f"({after.get('n_items')} items, {fmt(100 * after.get('confidence', 0.95), '.0f')}% bootstrap CIs).</p>"]
    fig = F.subgroup_figure(reference, after, names=names[:2])
    if fig is None:
        parts.append("<p class='note'>The evaluation data has no group column, so there is no per-subgroup view. "
                     "Set <code>data.group_column</code> in frugal.yaml to check quality per subgroup.</p>")
        return "".join(parts)
    parts.append(F.figure_html(fig, "fig-subgroups"))
    before = after.get("reference_by_group") or {}
    rows = []
    for g, metrics in sorted(after["by_group"].items(), key=lambda kv: -after["group_sizes"].get(kv[0], 0)):
        rows.append([esc(g), str(after["group_sizes"].get(g, "")), fmt(before.get(g, {}).get(primary)),
                     fmt(metrics.get(primary)), fmt(after.get("group_drop", {}).get(g))])
    parts.append(table([f"{esc(after.get('group_column') or 'group')}", "n", f"{esc(primary)} {names[2]}",
                        f"{esc(primary)} {names[3]}", "drop"], rows, numeric=(1, 2, 3, 4)))
    worst = after.get("worst_group_drop")
    if worst:
        from frugalml.evaluate import dropped_group

        group = dropped_group(worst)
        parts.append(f"<p>Worst group: <b>{esc(group)}</b>, drop {fmt(worst[1])} (overall drop "
                     f"{fmt(drop.get('value'))}).</p>" if group else
                     f"<p>No group dropped against the reference (overall drop {fmt(drop.get('value'))}).</p>")
    return "".join(parts)


def _profile_sections(profiles: dict[str, dict[str, Any]]) -> str:
    parts = []
    lat_rows = []
    for label, prof in profiles.items():
        for b in sorted(prof["latency_ms"], key=int):
            s = prof["latency_ms"][b]
            lat_rows.append([esc(label), esc(b), fmt(s["p50"], ".3g"), fmt(s["p95"], ".3g"), fmt(s["p99"], ".3g"),
                             str(s["n"]), fmt(prof["throughput_items_per_s"][b], ".4g")])
    parts.append("<div class='grid'><div>" + F.figure_html(F.latency_figure(profiles), "fig-latency")
                 + "</div><div>" + F.figure_html(F.throughput_figure(profiles), "fig-throughput") + "</div></div>")
    parts.append(table(["model", "batch", "p50 ms", "p95 ms", "p99 ms", "n", "items/s"], lat_rows,
                       numeric=(1, 2, 3, 4, 5, 6)))
    models = ", ".join(f"{esc(label)} = {esc(p['model'])} ({esc(p['runtime'])} on {esc(p['device'])}, "
                       f"{p['threads']} threads)" for label, p in profiles.items())
    parts.append(f"<p class='muted'>{models}.</p>")
    return "".join(parts)


def _roofline_section(profiles: dict[str, dict[str, Any]]) -> str:
    parts = [F.figure_html(F.roofline_figure(profiles), "fig-roofline")]
    notes = []
    for label, prof in profiles.items():
        roof = prof["roofline"]
        timed = sum(1 for layer in roof["layers"] if layer.get("achieved_flops_per_s"))
        line = (f"{esc(label)}: at batch {roof['batch']} intensity {fmt(roof['arithmetic_intensity'], '.3g')} FLOP/B, "
                f"<b>{esc(roof['bound'])}-bound</b>, achieved {si(roof.get('achieved_flops_per_s'), 'FLOP/s')} = "
                f"{fmt(100 * roof['fraction_of_roof'] if roof.get('fraction_of_roof') else None, '.1f')}% of the roof; "
                f"{timed} of {len(roof['layers'])} layers timed")
        if not timed and roof["layers"]:
            line += f" (per-layer times need the PyTorch runtime; {esc(prof['runtime'])} is timed as a whole)"
        notes.append(line + ".")
    first = next(iter(profiles.values()))["roofline"]
    parts.append(f"<p>Roof: {esc(first['device'].get('name', ''))} ({esc(first['device'].get('source', ''))}), "
                 f"peak {si(first.get('peak_flops_per_s'), 'FLOP/s')} {esc(first.get('precision', ''))}, "
                 f"{si(first.get('bandwidth_bytes_per_s'), 'B/s')}, ridge {fmt(first.get('ridge_intensity'), '.3g')} "
                 "FLOP/B.</p><ul>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>")
    return "".join(parts)


def _candidates_section(summary: dict[str, Any]) -> str:
    chosen = (summary.get("chosen") or {}).get("number")
    rows, classes = [], []
    for c in sorted(summary.get("candidates") or [], key=lambda c: c["number"]):
        missed = [r["budget"] for r in c.get("checks", []) if not r["passed"]]
        skipped = c.get("skipped") or []
        recipe = esc(c.get("recipe_text") or "(unchanged)")
        if skipped:
            items = [f"{s.get('layer', '?')}: {s.get('reason', '')}" if isinstance(s, dict) else str(s)
                     for s in skipped[:6]]
            more = f" (and {len(skipped) - 6} more)" if len(skipped) > 6 else ""
            recipe += f"<br><span class='muted'>left unchanged: {esc('; '.join(items))}{esc(more)}</span>"
        rows.append([str(c["number"]) + (" ◆" if c.get("pareto") else ""), recipe, fmt(c.get("quality")),
                     fmt(c.get("cost")), "<span class='pass'>all met</span>" if not missed else
                     f"<span class='fail'>misses {esc(', '.join(missed))}</span>",
                     fmt(c.get("duration_s"), ".0f")])
        classes.append("chosen" if c["number"] == chosen else "")
    objectives = summary.get("objectives") or ["quality", "cost"]
    return (table(["#", "recipe", esc(objectives[0]), esc(objectives[1]), "budgets", "trial s"], rows,
                  numeric=(2, 3, 5), row_class=classes)
            + "<p class='muted'>◆ on the Pareto front; the highlighted row is the chosen candidate.</p>")


# ----------------------------------------------------------------------------- pages
def render_search(summary: dict[str, Any], *, plotly: str = "inline", run: Any = None, nav: str = "") -> str:
    """The search report for a ``summary.json`` / optimize run result."""
    chosen, config = summary.get("chosen"), summary.get("config") or {}
    model = config.get("model", "?")
    body = [f"<h1>frugalml search: {esc(model)} for {esc(summary['context'])}</h1>"]
    if chosen:
        body.append(f"<p>Chosen: <b>#{chosen['number']} {esc(chosen.get('recipe_text') or '(unchanged)')}</b>: "
                    f"{esc(summary['objectives'][0])} {fmt(chosen['quality'])}, {esc(summary['objectives'][1])} "
                    f"{fmt(chosen['cost'])}. <span class='muted'>{esc(summary.get('why', ''))}.</span></p>")
    else:
        closest = summary.get("closest")
        body.append("<p class='fail'><b>No candidate meets every budget.</b> " + (
            f"Closest: #{closest['number']} {esc(closest.get('recipe_text'))}, missing "
            f"{esc(', '.join(summary.get('missed', [])))}." if closest else "") + "</p>")
    meta = [f"{len(summary.get('candidates') or [])} candidates", f"study <code>{esc(summary.get('study'))}</code>",
            f"data {esc((config.get('data') or {}).get('eval'))}"]
    if run is not None:
        meta.append(f"run #{run.id}, {esc(run.created.strftime('%Y-%m-%d %H:%M UTC'))}")
    body.append(f"<p class='muted'>{'; '.join(meta)}.</p>")
    if summary.get("stopped_early"):
        body.append(f"<p class='note'>Stopped early: {esc(summary['stopped_early'])}.</p>")
    runoff = summary.get("runoff")
    if runoff:
        body.append(f"<p class='muted'>Run-off ({esc(runoff['metric'])}, {runoff['rounds']} alternating rounds; "
                    "in the trial → head to head): " + "; ".join(
                        f"#{f['number']} {fmt(f['trial_cost'])} → {fmt(f['cost'])}" for f in runoff["finalists"])
                    + ".</p>")
    body.append("<nav class='toc'>" + " · ".join(
        f"<a href='#{a}'>{t}</a>" for a, t in (("front", "trade-offs"), ("runoff", "run-off"), ("verdict", "budgets"),
                                               ("speed", "speed"), ("roofline", "roofline"),
                                               ("subgroups", "subgroups"), ("energy", "energy"),
                                               ("candidates", "candidates"), ("environment", "environment"))
        if a != "runoff" or runoff) + "</nav>")
    body.append(_section("Quality against latency, size and energy", "front",
                         F.figure_html(F.pareto_figure(summary), "fig-pareto")
                         + "<p class='muted'>Each panel's dotted line is the Pareto front in that plane; dashed red "
                         "lines are budgets; the black square is the unchanged model.</p>"))
    if runoff:
        body.append(_section("Run-off: the finalists head to head", "runoff", _runoff_section(
            runoff, higher_better=bool((summary.get("maximize") or [True, False])[1]))))
    verdict = summary.get("verdict")
    if verdict:
        status = "pass" if verdict["passed"] else "fail"
        body.append(_section(f"Budget verdicts (gate on the saved model): {status}", "verdict",
                             _check_rows(verdict["checks"])))
    elif chosen:
        body.append(_section("Budget verdicts (the chosen candidate in the search)", "verdict",
                             _check_rows(chosen.get("checks", []))))
    profiles = summary.get("profiles") or {}
    if profiles:
        body.append(_section("Latency and throughput per batch size", "speed", _profile_sections(profiles)))
        body.append(_section("Roofline", "roofline", _roofline_section(profiles)))
    else:
        body.append(_section("Latency, throughput and roofline", "speed",
                             "<p class='note'>This search recorded no profiles of the original and chosen models "
                             "(it ran without an output directory, or before frugalml 0.2). Run "
                             "<code>frugal optimize -o DIR</code> to get them.</p>"))
    after = ((summary.get("verdict") or {}).get("measured") or {}).get("evaluation") or (
        (chosen or {}).get("measured") or {}).get("evaluation")
    body.append(_section("Quality by subgroup, before and after", "subgroups",
                         _subgroup_section(summary.get("reference"), after)))
    body.append(_section("Energy and CO2e", "energy", _energy_section(profiles, _carbon(summary), run)
                         if profiles else "<p class='muted'>No profiles recorded.</p>"))
    body.append(_section("Candidates and their recipes", "candidates", _candidates_section(summary)))
    body.append(_section("Environment", "environment", _env_section(summary.get("env") or (run.env if run else {}))))
    return page(f"frugalml search {summary.get('study', '')}", "".join(body), plotly=plotly, nav=nav)


def render_profile(prof: dict[str, Any], *, plotly: str = "inline", run: Any = None, nav: str = "") -> str:
    """A profile's page: the headline table, latency distributions, throughput, roofline, heaviest layers."""
    body = [f"<h1>Profile of {esc(prof['model'])}</h1>"]
    rows = [["format / task", f"{esc(prof.get('format'))} / {esc(prof.get('task'))}"],
            ["runtime / device", f"{esc(prof['runtime'])} on {esc(prof['device'])} ({prof['threads']} threads, "
                                 f"{esc(prof['precision'])})"],
            ["inputs", esc(prof.get("data")) + (f", {prof['seq_len']} tokens per item" if prof.get("seq_len") else "")],
            ["parameters", f"{prof['params']:,} ({prof['params_nonzero']:,} non-zero)"],
            ["size as saved", f"{prof['size_bytes'] / 2**20:.2f} MiB"],
            ["FLOPs / MACs per item", f"{si(prof['flops_per_item'], 'FLOP')} / {si(prof['macs_per_item'], 'MAC')}"],
            ["peak memory", f"{prof['peak_memory_bytes'] / 2**20:.1f} MiB"],
            ["energy source", esc(prof.get("energy_note") or prof.get("energy_source"))]]
    if run is not None:
        rows.append(["run", f"#{run.id}, {esc(run.created.strftime('%Y-%m-%d %H:%M UTC'))}"])
    body.append(table(["", ""], rows))
    profiles = {"model": prof}
    if prof.get("latency_samples_ms"):
        body.append(_section("Latency and throughput per batch size", "speed", _profile_sections(profiles)))
    else:
        body.append("<p class='note'>This profile kept no latency samples (recorded before frugalml 0.2); only the "
                    "summary statistics are shown.</p>")
    body.append(_section("Roofline", "roofline", _roofline_section(profiles)))
    layers = sorted((layer for layer in prof["roofline"]["layers"]), key=lambda layer: -(layer.get("time_ms") or 0)
                    if layer.get("time_ms") else -layer["flops"])[:15]
    body.append(_section("Heaviest layers", "layers", table(
        ["layer", "kind", "FLOPs", "FLOP/B", "bound", "ms", "of roof"],
        [[esc(layer["name"]), esc(layer["kind"]), si(layer["flops"]), fmt(layer["intensity"], ".3g"),
          esc(layer["bound"]), fmt(layer.get("time_ms"), ".3f"),
          fmt(100 * layer["fraction_of_roof"] if layer.get("fraction_of_roof") else None, ".1f")] for layer in layers],
        numeric=(2, 3, 5, 6))))
    body.append(_section("Energy and CO2e", "energy", _energy_section(profiles, _carbon(prof), run)))
    body.append(_section("Environment", "environment", _env_section(prof.get("env") or {})))
    return page(f"frugalml profile {prof['model']}", "".join(body), plotly=plotly, nav=nav)


def _sign_test_p(rounds: int) -> float:
    """Two-sided sign test: the chance that one of two equally fast models wins every one of ``rounds``."""
    return min(1.0, 2 * 0.5 ** rounds)


def _wins_matrix(labels: list[str], by_round: list[list[float]], *, higher_better: bool) -> str:
    """Pairwise: in how many rounds the row's model beat the column's (rounds are paired: every
    model ran in each, seconds apart)."""
    rows = []
    for i, a in enumerate(by_round):
        cells = [esc(labels[i])]
        for j, b in enumerate(by_round):
            if i == j:
                cells.append("—")
                continue
            wins = sum((x > y) if higher_better else (x < y) for x, y in zip(a, b))
            cells.append(f"<b>{wins}</b> of {len(a)}" if wins == len(a) else f"{wins} of {len(a)}")
        rows.append(cells)
    return table(["faster than →"] + [esc(label) for label in labels], rows, numeric=range(1, len(labels) + 1))


def _runoff_section(runoff: dict[str, Any], *, higher_better: bool) -> str:
    finalists = runoff["finalists"]
    rows, classes = [], []
    tied = runoff.get("tied") or []
    for f in finalists:
        fastest = bool(tied) and f["number"] == tied[0]
        if f["number"] == runoff["pick"]:
            decided = "picked, the fastest" if fastest else "picked, tied with the fastest"
        else:
            decided = ("the fastest, tied with others" if fastest else "tied with the fastest" if f["number"] in tied
                       else "slower in every round")
        rows.append([f"#{f['number']}", esc(f.get("recipe_text") or "(unchanged)"), fmt(f.get("quality")),
                     fmt(f.get("trial_cost")), fmt(f.get("cost")),
                     f"{fmt(min(f['by_round']))}–{fmt(max(f['by_round']))}" if f.get("by_round") else "—",
                     esc(decided)])
        classes.append("chosen" if f["number"] == runoff["pick"] else "")
    labels = [f"#{f['number']}" for f in finalists]
    by_round = [list(f.get("by_round") or []) for f in finalists]
    out = table(["trial", "recipe", "quality", "cost in its trial", "cost head to head", "range over the rounds",
                 "decision"], rows, numeric=(2, 3, 4, 5), row_class=classes)
    out += (f"<p class='muted'>{esc(runoff['metric'])} at batch {runoff['batch']}, {runoff['rounds']} alternating "
            f"rounds of {fmt(runoff.get('round_s'), '.3g')} s per finalist; the cost is the median over the rounds. "
            f"A finalist is slower than the fastest only if it lost every round (sign test, two-sided p = "
            f"{_sign_test_p(runoff['rounds']):.2g}). The trials alone had ranked #{runoff['trial_pick']} first."
            + (f" Here {esc(runoff['tie_note'])}." if runoff.get("tie_note") else "") + "</p>")
    if all(by_round):
        out += "<div class='grid'>" + F.figure_html(F.rounds_figure(
            list(zip(labels, by_round)), runoff.get("orders") or [], str(runoff["metric"])), "fig-runoff") + (
            _wins_matrix(labels, by_round, higher_better=higher_better) + "</div>")
    return out


def render_compare(comparison: dict[str, Any], *, plotly: str = "inline", run: Any = None, nav: str = "") -> str:
    """A head-to-head comparison's page (``Comparison.to_dict()``, a ``compare`` run's result): the
    medians with their spread over the rounds, each model round by round, and who beat whom in how
    many rounds."""
    contenders = comparison["contenders"]
    rounds, batch, device = comparison["rounds"], comparison["batch"], comparison["device"]
    labels = [f"#{i} {c['name']}" for i, c in enumerate(contenders)]
    fastest = min(range(len(contenders)), key=lambda i: contenders[i]["p50_ms"])
    names = " vs ".join(c["name"] for c in contenders)
    body = [f"<h1>Head to head at batch {batch} on {esc(device)}: {esc(names)}</h1>"]
    meta = [f"{rounds} alternating rounds of {fmt(comparison['round_s'], '.3g')} s per model",
            f"{comparison['seq_len']} tokens per item" if comparison.get("seq_len") else "",
            f"run #{run.id}, {esc(run.created.strftime('%Y-%m-%d %H:%M UTC'))}" if run is not None else ""]
    body.append(f"<p class='muted'>{'; '.join(m for m in meta if m)}. Latency in ms per batch; every figure "
                "is the median over the rounds of that round's own statistic, so a steady drift of the "
                "machine falls on every model alike.</p>")

    def spread(values: list[float]) -> str:
        return f"{fmt(min(values), '.3f')}–{fmt(max(values), '.3f')}" if values else "—"

    rows = [[esc(labels[i]), esc(c["runtime"]), fmt(c["p50_ms"], ".3f"), spread(c["p50_by_round_ms"]),
             fmt(c["p95_ms"], ".3f"), spread(c["p95_by_round_ms"]), f"{c['throughput_items_per_s']:,.1f}",
             f"{c['n']:,}", f"{c['p50_ms'] / contenders[fastest]['p50_ms']:.2f}x"] for i, c in enumerate(contenders)]
    body.append(table(["model", "runtime", "p50", "p50 by round", "p95", "p95 by round", "items/s", "timed calls",
                       "p50 vs fastest"], rows, numeric=range(2, 9),
                      row_class=["chosen" if i == fastest else "" for i in range(len(contenders))]))
    orders = comparison.get("orders") or []
    p50s = [list(c["p50_by_round_ms"]) for c in contenders]
    body.append(_section("Round by round", "rounds", "<div class='grid'>" + F.figure_html(
        F.rounds_figure(list(zip(labels, p50s)), orders, "p50 latency per batch (ms)"), "fig-rounds-p50")
        + F.figure_html(F.rounds_figure(list(zip(labels, [list(c["p95_by_round_ms"]) for c in contenders])),
                                        orders, "p95 latency per batch (ms)"), "fig-rounds-p95") + "</div>"))
    body.append(_section("Faster in how many rounds (p50)", "wins", _wins_matrix(labels, p50s, higher_better=False)
                         + f"<p class='muted'>Rounds are paired: every model ran in each, seconds apart. Faster in "
                         f"every one of {rounds} rounds is a difference beyond the machine's drift (sign test, "
                         f"two-sided p = {_sign_test_p(rounds):.2g}); fewer, and the ranking is within it.</p>"))
    if run is not None:
        body.append(_section("Configuration", "config", f"<pre>{esc(json.dumps(run.config, indent=2))}</pre>"))
    body.append(_section("Environment", "environment", _env_section(run.env if run is not None else {})))
    return page(f"frugalml compare at batch {batch}", "".join(body), plotly=plotly, nav=nav)


def render_evaluation(result: dict[str, Any], *, plotly: str = "inline", run: Any = None, nav: str = "") -> str:
    """An ``evaluate`` run: every metric with its interval (and the reference's value and the drop),
    then the primary metric per subgroup against the reference."""
    against = f" against {esc(result.get('reference_model'))}" if result.get("reference_model") else ""
    body = [f"<h1>Evaluation of {esc(result.get('model'))}</h1>",
            f"<p>{esc(result.get('task'))} quality on {esc(result.get('data'))}{against}.</p>"]
    reference, drops = result.get("reference") or {}, result.get("drop") or {}
    rows = []
    for metric, e in result["overall"].items():
        row = [esc(metric) + (" <b>(primary)</b>" if metric == result.get("primary") else ""), fmt(e["value"]),
               f"[{fmt(e['low'])}, {fmt(e['high'])}]"]
        if reference:
            d = drops.get(metric) or {}
            row += [fmt(reference.get(metric)), fmt(d.get("value")), f"[{fmt(d.get('low'))}, {fmt(d.get('high'))}]"]
        rows.append(row)
    headers = ["metric", "value", "CI"] + (["reference", "drop", "paired CI"] if reference else [])
    body.append(_section("Metrics", "metrics", table(headers, rows, numeric=tuple(range(1, len(headers))))
                         + "<p class='muted'>drop: how much worse than the reference (positive = worse).</p>"))
    body.append(_section("Quality by subgroup", "subgroups",
                         _subgroup_section(None, result, names=_EVALUATE_NAMES)))
    if run is not None:
        body.append(_section("Configuration", "config", f"<pre>{esc(json.dumps(run.config, indent=2))}</pre>"))
        body.append(_section("Environment", "environment", _env_section(run.env)))
    return page(f"frugalml evaluation of {result.get('model')}", "".join(body), plotly=plotly, nav=nav)


def render_run(run: Any, *, plotly: str = "inline", nav: str = "") -> str:
    """A store run's page: its report when it has one (optimize, profile), else its record."""
    if run.result is not None and run.kind == "optimize" and "candidates" in run.result:
        return render_search(run.result, plotly=plotly, run=run, nav=nav)
    if run.result is not None and run.kind == "profile" and "roofline" in run.result:
        return render_profile(run.result, plotly=plotly, run=run, nav=nav)
    if run.result is not None and run.kind == "compare" and run.result.get("contenders"):
        return render_compare(run.result, plotly=plotly, run=run, nav=nav)
    if run.result is not None and run.kind == "evaluate" and run.result.get("overall"):
        return render_evaluation(run.result, plotly=plotly, run=run, nav=nav)
    if run.result is not None and run.kind == "scaling-sweep" and run.result.get("points"):
        from frugalml.scaling._report import sweep_run_report

        return sweep_run_report(run.result, plotly=plotly, nav=nav)
    status = "pass" if run.status == "succeeded" else "fail" if run.status == "failed" else "muted"
    body = [f"<h1>Run #{run.id}: {esc(run.kind)} {esc(run.name)}</h1>",
            f"<p><span class='{status}'>{esc(run.status)}</span>, started "
            f"{esc(run.created.strftime('%Y-%m-%d %H:%M:%S UTC'))}, {fmt(run.duration_s, '.1f')} s.</p>"]
    if run.error:
        body.append(f"<p class='note fail'>{esc(run.error)}</p>")
    from frugalml.data._report import data_run_sections
    from frugalml.train._report import train_run_sections

    body.extend(data_run_sections(run))
    body.extend(train_run_sections(run))
    if run.measurements:
        body.append(_section("Measurements", "measurements", table(
            ["name", "batch", "value", "unit", "device", "source"],
            [[esc(m.name), esc(m.batch if m.batch is not None else ""), fmt(m.value), esc(m.unit), esc(m.device),
              esc(m.source)] for m in run.measurements], numeric=(1, 2))))
    if run.result:
        verdict = run.result.get("verdict") if isinstance(run.result.get("verdict"), dict) else run.result
        if run.kind == "gate" and "checks" in verdict:
            status = "pass" if verdict.get("passed") else "fail"
            body.append(_section(f"Budget verdicts: {status}", "verdict", _check_rows(verdict["checks"])))
        body.append(_section("Result", "result", f"<pre>{esc(json.dumps(run.result, indent=2)[:20000])}</pre>"))
    body.append(_section("Configuration", "config", f"<pre>{esc(json.dumps(run.config, indent=2))}</pre>"))
    body.append(_section("Environment", "environment", _env_section(run.env)))
    if run.artifacts:
        body.append(_section("Artifacts", "artifacts", table(
            ["path", "bytes", "sha256"], [[esc(a.path), f"{a.bytes:,}", f"<code>{esc(a.sha256[:16])}…</code>"]
                                          for a in run.artifacts], numeric=(1,))))
    return page(f"frugalml run {run.id}", "".join(body), plotly=plotly, nav=nav)


def render_report(source: ReportSource, *, plotly: str = "inline") -> str:
    """The report for a loaded :class:`ReportSource`."""
    from frugalml.errors import InvalidArgumentError

    if source.run is not None:
        return render_run(source.run, plotly=plotly)
    renderers = {"optimize": render_search, "profile": render_profile, "compare": render_compare,
                 "evaluate": render_evaluation}
    if source.kind not in renderers:
        raise InvalidArgumentError("target", source.origin, f"holds a {source.kind} result, which has no report",
                                   "Pass an optimize, profile, compare or evaluate run, or an optimize output "
                                   "directory.")
    try:
        return renderers[source.kind](source.data, plotly=plotly)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        # a file is the user's to edit: one missing or mistyped field is their error to fix, not a
        # traceback (a store run's result is frugal's own and keeps its traceback)
        what = {"optimize": "a search summary", "profile": "a profile", "compare": "a comparison",
                "evaluate": "an evaluation"}[source.kind]
        raise InvalidArgumentError("target", source.origin, f"looks like {what} but is not shaped as frugal "
                                   f"writes it ({_shape_error(exc)})", "Pass the file frugal wrote, unedited; if it "
                                   "is unedited, run with --debug and report the traceback.") from exc


def _shape_error(exc: Exception) -> str:
    """What a hand-edited result file got wrong, from the error rendering it raised."""
    if isinstance(exc, KeyError):
        return f"no field {exc.args[0]!r} where one is expected"
    return f"{type(exc).__name__}: {exc}"


def write_report(target: int | str | Path, path: str | Path | None = None, *, store: Any = None) -> Path:
    """Write the self-contained report of a run id or output directory; returns the file written.

    ``path`` defaults to ``report.html`` in the output directory, or ``report-RUN.html`` for a run id.
    """
    source = load_source(target, store=store)
    if path is None:
        path = (Path(target) / "report.html") if Path(str(target)).is_dir() else Path(
            f"report-{source.run.id}.html" if source.run is not None else "report.html")
    out = Path(path)
    if out.is_dir():
        from frugalml.errors import InvalidArgumentError

        raise InvalidArgumentError("output", str(out), "is a directory", "Pass a file path such as report.html.")
    atomic_write_bytes(out, render_report(source).encode("utf-8"))  # a reader never sees half a report
    return out


def write_search_report(result: Any, path: str | Path) -> Path:
    """Write the report of a SearchResult (or its ``to_dict()``) to ``path``."""
    summary = result if isinstance(result, dict) else result.to_dict()
    out = Path(path)
    atomic_write_bytes(out, render_search(summary).encode("utf-8"))
    return out
