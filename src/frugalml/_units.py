"""Human-readable sizes for tables, run lists and model cards (decimal units, as artifact sizes are quoted)."""

from __future__ import annotations

__all__ = ["format_bytes"]


def format_bytes(value: float | None) -> str:
    """``value`` bytes in GB, MB, or kB below 1 MB (a 24 kB artifact is not "0.0 MB"); ``n/a`` for None."""
    if value is None:
        return "n/a"
    if value >= 1e9:
        return f"{value / 1e9:,.2f} GB"
    if value >= 1e6:
        return f"{value / 1e6:,.1f} MB"
    return f"{value / 1e3:.1f} kB" if value >= 1e3 else f"{value:.0f} B"
