"""Human-readable quantities for tables, run lists and model cards: sizes (decimal units, as artifact sizes
are quoted), small quantities with an SI prefix, energies."""

from __future__ import annotations

__all__ = ["format_bytes", "format_joules", "format_small"]


def format_bytes(value: float | None) -> str:
    """``value`` bytes in GB, MB, or kB below 1 MB (a 24 kB artifact is not "0.0 MB"); ``n/a`` for None."""
    if value is None:
        return "n/a"
    if value >= 1e9:
        return f"{value / 1e9:,.2f} GB"
    if value >= 1e6:
        return f"{value / 1e6:,.1f} MB"
    return f"{value / 1e3:.1f} kB" if value >= 1e3 else f"{value:.0f} B"


def format_small(value: float, unit: str) -> str:
    """A quantity of at most a few units with a prefix that keeps 3 significant digits readable:
    0.000274 J -> 274 µJ."""
    if value == 0:
        return f"0 {unit}"
    for factor, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "µ")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value / 1e-9:.3g} n{unit}"


def format_joules(value: float) -> str:
    """Whole joules from 100 J up, 3 significant digits below (a one-epoch MLP's 0.37 J is not "0 J")."""
    return f"{value:,.0f} J" if value >= 100 else format_small(value, "J")
