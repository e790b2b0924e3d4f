"""Interaction logs as data: load and validate a log, split it by time, fetch MovieLens-100K.

The pandas-based parts are imported lazily (attribute access loads the submodule), so neither
``import recsim_env`` nor ``recsim-data`` imports pandas until a log is loaded::

    from recsim_env.data import load_log, temporal_split, load_movielens_100k

    log = load_movielens_100k()            # fetches into data_home() on first use
    train, test = temporal_split(log)      # each user's last 20 % by time held out
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# fetch.py needs only the standard library: imported eagerly, so that the name ``fetch`` here is the
# function (a lazy import would let the submodule of the same name shadow it)
from recsim_env.data.fetch import (
    DATASETS,
    Dataset,
    FetchError,
    data_home,
    dataset_dir,
    fetch,
    is_present,
    verify,
)

if TYPE_CHECKING:
    from recsim_env.data.log import InteractionLog, LogError, load_log, read_atomic
    from recsim_env.data.movielens import load_movielens_100k
    from recsim_env.data.split import temporal_split

_WHERE = {
    "InteractionLog": "log",
    "LogError": "log",
    "load_log": "log",
    "read_atomic": "log",
    "load_movielens_100k": "movielens",
    "temporal_split": "split",
}
__all__ = [
    "DATASETS",
    "Dataset",
    "FetchError",
    "InteractionLog",
    "LogError",
    "data_home",
    "dataset_dir",
    "fetch",
    "is_present",
    "load_log",
    "load_movielens_100k",
    "read_atomic",
    "temporal_split",
    "verify",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'recsim_env.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"recsim_env.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
