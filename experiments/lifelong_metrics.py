"""Moved to :mod:`experiments.analysis.lifelong` (this name is kept for existing imports)."""

from experiments.analysis.lifelong import *  # noqa: F403
from experiments.analysis.lifelong import __all__  # noqa: F401
