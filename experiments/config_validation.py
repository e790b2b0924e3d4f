"""Moved to :mod:`experiments.run.config` (this name is kept for existing imports)."""

from experiments.run.config import *  # noqa: F403
from experiments.run.config import __all__  # noqa: F401
