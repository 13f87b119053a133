"""Report sections for training runs (the run page of `frugal ui` and `frugal report`): a ``train`` run's
loss and validation accuracy per epoch with its privacy record, a ``federated`` run's accuracy and bytes
per round against the centralised reference."""

from __future__ import annotations

from typing import Any

__all__ = ["train_headline", "train_run_sections"]


def train_headline(run: Any) -> str:
    """One line for `frugal runs list`: test accuracy (and epsilon), or federated accuracy vs centralised."""
    r = run.result or {}
    if run.kind == "train" and r.get("test_accuracy") is not None:
        privacy = r.get("privacy")
        return (f"{r['method']}: accuracy {r['test_accuracy']:.4f}"
                + (f", epsilon {privacy['epsilon_spent']:.3g}" if privacy else ""))
    if run.kind == "federated" and r.get("final_accuracy") is not None:
        central = r.get("centralized_accuracy")
        return (f"{r['config']['strategy']}: accuracy {r['final_accuracy']:.4f}"
                + (f" vs {central:.4f} centralised" if central is not None else ""))
    return ""


def _epochs(result: dict[str, Any]) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from frugalml.report._figures import _LAYOUT

    history = result["history"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    epochs = [h["epoch"] for h in history]
    fig.add_trace(go.Scatter(x=epochs, y=[h["validation_accuracy"] for h in history], name="validation accuracy",
                             mode="lines+markers", line={"color": "#0969da"}), secondary_y=False)
    fig.add_trace(go.Scatter(x=epochs, y=[h["loss"] for h in history], name="training loss", mode="lines+markers",
                             line={"color": "#bc4c00", "dash": "dot"}), secondary_y=True)
    fig.update_layout(xaxis_title="epoch", height=380, legend={"orientation": "h", "y": -0.25}, **_LAYOUT)
    fig.update_yaxes(title_text="validation accuracy", secondary_y=False)
    fig.update_yaxes(title_text="training loss", secondary_y=True)
    return fig


def _rounds(result: dict[str, Any]) -> Any:
    import plotly.graph_objects as go

    from frugalml.report._figures import _LAYOUT

    rounds = result["rounds"]
    fig = go.Figure(go.Scatter(x=[r["round"] for r in rounds], y=[r["accuracy"] for r in rounds], mode="lines",
                               name=f"{result['config']['strategy']} (global model)", line={"color": "#0969da"}))
    if result.get("centralized_accuracy") is not None:
        fig.add_hline(y=result["centralized_accuracy"], line_dash="dash", line_color="#555",
                      annotation_text=f"centralised {result['centralized_accuracy']:.4f}",
                      annotation_position="bottom right")
    fig.update_layout(xaxis_title="round", yaxis_title="test accuracy", height=380,
                      legend={"orientation": "h", "y": -0.25}, **_LAYOUT)
    return fig


def train_run_sections(run: Any) -> list[str]:
    """HTML sections for a ``train`` or ``federated`` run; empty for other runs."""
    from frugalml.report._figures import figure_html
    from frugalml.report.html import esc, fmt, table

    r = run.result or {}
    if run.kind == "train" and r.get("history"):
        rows = [["test accuracy", fmt(r["test_accuracy"])],
                ["before training", fmt(r.get("baseline_test_accuracy"))],
                ["trainable parameters", f"{r['params_trainable']:,} of {r['params_total']:,} "
                                         f"({100 * r['trainable_fraction']:.2f}%)"],
                ["time / peak memory / energy", f"{fmt(r['train_seconds'], '.1f')} s / "
                 f"{fmt(r['peak_memory_bytes'] / 1e6, '.0f')} MB / {fmt(r['energy_j'], '.0f')} J "
                 f"({esc(r['energy_source'])})"]]
        sections = ["<h2>Training</h2>" + table(["", ""], rows),
                    "<h2>Per epoch</h2>" + figure_html(_epochs(r), "fig-train-epochs")]
        p = r.get("privacy")
        if p:
            sections.append(f"<h2>Privacy</h2><p>DP-SGD ({esc(p['library'])}): epsilon {fmt(p['epsilon_spent'])} "
                            f"(target {fmt(p['epsilon_target'])}), delta {fmt(p['delta'])}, "
                            f"{esc(p['accountant'])} accountant, noise multiplier {fmt(p['noise_multiplier'])}, "
                            f"clipping {fmt(p['max_grad_norm'])}, {p['steps']} steps; unit: {esc(p['unit'])}.</p>")
        return sections
    if run.kind == "federated" and r.get("rounds"):
        rows = [[str(x["round"]), fmt(x["accuracy"]), f"{x.get('upload_bytes', 0):,}", f"{x.get('download_bytes', 0):,}",
                 str(x.get("failures", 0))] for x in r["rounds"]]
        return ["<h2>Accuracy per round</h2>" + figure_html(_rounds(r), "fig-federated-rounds"),
                "<h2>Rounds</h2>" + table(["round", "accuracy", "bytes up", "bytes down", "failed"], rows,
                                          numeric=(0, 1, 2, 3, 4))]
    return []
