"""``recsim-tune``: Optuna over ``recsim-train`` runs (see :mod:`.cli`): :mod:`.space` (search
spaces), :mod:`.study` (sampler, trials, study, report)."""

from experiments.tune.cli import build_parser, main
from experiments.tune.space import SPACE_DIR, Param, SearchSpace
from experiments.tune.study import (
    Objective,
    best_record,
    compose_config,
    make_sampler,
    make_storage,
    report,
    resolve_setup,
    tune,
)

__all__ = [
    "SPACE_DIR",
    "Objective",
    "Param",
    "SearchSpace",
    "best_record",
    "build_parser",
    "compose_config",
    "main",
    "make_sampler",
    "make_storage",
    "report",
    "resolve_setup",
    "tune",
]
