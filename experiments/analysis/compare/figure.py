"""The one way recsim-compare's plots make a figure (shared by the report's plots and the recovery
plot, which therefore do not import each other)."""

from __future__ import annotations

from typing import Any


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    size: tuple[float, float] = (7.0, 4.2),
    *,
    sharey: bool = False,
    extra_width: float = 0.0,
) -> tuple[Any, Any]:
    """A matplotlib ``Figure`` (no pyplot: no global state) with a grid of axes, constrained layout;
    ``extra_width`` inches to the right for legends outside the axes."""
    from matplotlib.figure import Figure  # no pyplot: no global state, the Agg canvas by default

    fig = Figure(figsize=(size[0] * ncols + extra_width, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    return fig, axes
