"""A simulator calibrated to a real interaction log: the :class:`Calibration` bundle (numpy only).

The bundle itself (dataclass, checks, pickle-free files, and why it is plain arrays) is
:mod:`recsim_env.calibration_bundle`; this module resolves names and builds bundles, and re-exports
the bundle's public names (``from recsim_env.grounding import Calibration``).

How the simulator uses it (``SimConfig.calibration``, see ``recsim_env/config.py``): fitted ``params``
become the defaults of the simulator's parameters; the catalogue is the calibration's items; new users
are drawn from the real users by ``user_activity``; the population mean replays ``trajectory``; and
``info`` says which real user / item each simulated one is (``user_id``, ``item_id``).

:func:`resolve_calibration` turns a ``calibration=`` value (a directory written by
:meth:`Calibration.save`, or a known name such as ``"movielens-100k"``) into a :class:`Calibration`,
cached so that the envs of one process share one object. A known name lives in
``data_home()/calibrations/<name>/``; when it is missing it is built once (data fetched and fitted by
``recsim_env.data`` / ``recsim_env.calibrate``, imported lazily: ``import recsim_env`` stays
numpy + gymnasium only).
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recsim_env.calibration_bundle import (
    _ARRAYS,  # noqa: F401 (read as grounding._ARRAYS by the tests)
    FORMAT,
    JSON,
    LENGTH_MAX,
    LENGTH_MIN,
    NPZ,
    QA_CLIP,
    VERSION,
    Calibration,
)
from recsim_env.validation import ConfigError, fail

__all__ = [
    "FORMAT",
    "KNOWN_CALIBRATIONS",
    "VERSION",
    "Calibration",
    "calibration_dir",
    "clear_calibration_cache",
    "data_home",
    "resolve_calibration",
    "synthetic_calibration",
]


# ---------------------------------------------------------------------------------- resolving
def data_home() -> Path:
    """Where data sets and known calibrations are cached: ``recsim_env.data.fetch.data_home()``
    (``$RECSIM_DATA_DIR``, else ``$XDG_DATA_HOME/recsim-env``, else ``~/.local/share/recsim-env``).
    The same rule is repeated here for when ``recsim_env.data`` cannot be imported (it needs
    pandas), so that an already built calibration is found with numpy alone."""
    try:  # imported by name: the data package is optional (and needs pandas)
        fetch = importlib.import_module("recsim_env.data.fetch")
    except ImportError:
        pass
    else:
        return Path(fetch.data_home())
    if os.environ.get("RECSIM_DATA_DIR"):
        return Path(os.environ["RECSIM_DATA_DIR"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "recsim-env"


def calibration_dir(name: str) -> Path:
    """The directory of the known calibration ``name``: ``data_home()/calibrations/<name>``."""
    return data_home() / "calibrations" / name


def _manual_steps(name: str, directory: Path) -> str:
    return (
        f"fetch the data with `recsim-data fetch {name}` and fit it with "
        f"`recsim-calibrate {name} --out {directory}`"
    )


def build_movielens_100k(directory: Path) -> None:
    """Fetch MovieLens-100K, fit it on the *train* split of ``temporal_split`` (each user's last
    20 % of ratings by time stay unseen), seed 0, and save the calibration to ``directory``.

    The heavy packages are imported here, only when a build is needed; progress goes to stderr."""
    name = "movielens-100k"
    try:  # imported by name: optional packages that need pandas / scikit-learn / scipy
        fit = importlib.import_module("recsim_env.calibrate.fit").fit
        data = importlib.import_module("recsim_env.data")
        load_movielens_100k, temporal_split = data.load_movielens_100k, data.temporal_split
    except (ImportError, AttributeError) as err:
        raise ConfigError(
            f"calibration {name!r} is not built yet ({directory} is missing) and it cannot be "
            f"built here: {err}. Install recsim-env with its data extras, or {_manual_steps(name, directory)}"
        ) from err
    say = _progress
    say(f"calibration {name!r} not found in {directory}: building it (once)")
    say(f"loading MovieLens-100K (fetched into {data_home()} if missing) ...")
    try:
        log = load_movielens_100k(fetch_if_missing=True)
    except Exception as err:  # network, checksum, disk: the user needs the manual route
        raise ConfigError(
            f"calibration {name!r} needs the MovieLens-100K data, which could not be obtained "
            f"({type(err).__name__}: {err}); {_manual_steps(name, directory)}"
        ) from err
    train, _ = temporal_split(log)
    say("fitting the simulator on the train split (seed 0) ...")
    calibration = fit(train, seed=0)
    tmp = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    calibration.save(tmp)
    try:
        tmp.replace(directory)  # atomic: a concurrent builder's finished directory wins
    except OSError:
        if not (directory / JSON).is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"calibration {name!r} saved to {directory}")


def _progress(message: str) -> None:
    print(f"recsim-env: {message}", file=sys.stderr, flush=True)


# name -> builder(directory); a builder writes a Calibration.save directory or raises ConfigError
KNOWN_CALIBRATIONS: dict[str, Callable[[Path], None]] = {"movielens-100k": build_movielens_100k}

_CACHE: dict[tuple[Any, ...], Calibration] = {}
_CACHE_MAX = 8


def clear_calibration_cache() -> None:
    """Forget the calibrations read so far (the next resolve reads the files again)."""
    _CACHE.clear()


def resolve_calibration(name_or_path: str | os.PathLike[str] | Calibration) -> Calibration:
    """The :class:`Calibration` of a ``calibration=`` value: a known name (``KNOWN_CALIBRATIONS``,
    built into ``data_home()/calibrations/<name>`` when missing) or a directory written by
    :meth:`Calibration.save`. Cached: the same unchanged files give the same object, so ``B`` envs
    (and every ``SimConfig`` of a sweep) read them once."""
    if isinstance(name_or_path, Calibration):
        return name_or_path
    if not isinstance(name_or_path, str | os.PathLike) or not str(name_or_path):
        fail("calibration", name_or_path, _ALLOWED)
    value = str(name_or_path)
    if value in KNOWN_CALIBRATIONS:
        directory = calibration_dir(value)
        if not (directory / JSON).is_file():
            KNOWN_CALIBRATIONS[value](directory)  # creates the directory only once built
            if not (directory / JSON).is_file():
                raise ConfigError(
                    f"calibration {value!r} was not written to {directory}; "
                    f"{_manual_steps(value, directory)}"
                )
    else:
        directory = Path(value).expanduser()
        if directory.name in (NPZ, JSON) and directory.is_file():
            directory = directory.parent
        if not (directory / JSON).is_file():
            fail("calibration", value, _ALLOWED + f" (no {JSON} in {directory})")
    directory = directory.resolve()
    stats = [os.stat(directory / n) for n in (JSON, NPZ)]
    key = (str(directory), *[(s.st_mtime_ns, s.st_size, s.st_ino) for s in stats])
    cached = _CACHE.get(key)
    if cached is None:
        cached = Calibration.load(directory)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = cached
    return cached


_ALLOWED = (
    f"a known calibration name {sorted(KNOWN_CALIBRATIONS)} or a directory written by "
    f"Calibration.save ({JSON} + {NPZ})"
)


# ---------------------------------------------------------------------------------- synthetic
def synthetic_calibration(
    num_items: int = 200,
    num_topics: int = 6,
    num_users: int = 50,
    *,
    num_windows: int = 4,
    window_ticks: int = 50,
    future_items: int = 0,
    seed: int = 0,
    string_ids: bool = False,
    name: str = "synthetic",
    params: Mapping[str, Any] | None = None,
) -> Calibration:
    """A small made-up calibration with the shape of a real one, for tests and examples (no data
    needed). Ids are not positions (items ``1000 + …`` shuffled, users ``1 + …``, or strings) so
    that code mixing ids and indices fails; ``future_items`` items are born after the clock starts;
    activity is Zipf-like; the trajectory visits ``num_windows`` distinct profiles."""
    rng = np.random.default_rng(seed)
    m, k, n = num_items, num_topics, num_users
    item_ids = 1000 + rng.permutation(m)
    user_ids = 1 + rng.permutation(n)
    if string_ids:
        item_ids = np.array([f"i{v}" for v in item_ids])
        user_ids = np.array([f"u{v}" for v in user_ids])
    birth = -rng.integers(0, 500, m)
    if future_items:
        late = rng.choice(m, size=future_items, replace=False)
        birth[late] = rng.integers(1, num_windows * window_ticks + 1, future_items)
    z = rng.standard_normal((m, 2))
    profiles = rng.uniform(-0.6, 0.2, (num_windows, k))
    profiles[np.arange(num_windows), rng.integers(0, k, num_windows)] = 0.9
    user_interest = np.clip(profiles[0] + 0.4 * rng.standard_normal((n, k)), -1.0, 1.0).astype(
        np.float32
    )
    activity = 1.0 / np.arange(1, n + 1) ** 1.1
    return Calibration(
        name=name,
        item_ids=item_ids,
        item_topics=rng.dirichlet(np.full(k, 0.3), m).astype(np.float32),
        item_quality=np.clip(z[:, 0], -QA_CLIP, QA_CLIP).astype(np.float32),
        item_appeal=np.clip(-0.5 * z[:, 0] + 0.85 * z[:, 1], -QA_CLIP, QA_CLIP).astype(np.float32),
        item_length=rng.uniform(LENGTH_MIN, LENGTH_MAX, m).astype(np.float32),
        item_birth=birth.astype(np.int64),
        user_ids=user_ids,
        user_interest=user_interest,
        user_activity=rng.permutation(activity / activity.sum()),
        trajectory=profiles.astype(np.float32),
        window_ticks=window_ticks,
        params=dict(params) if params is not None else {"interest_weight": 3.5, "user_noise": 0.2},
        report={"synthetic": {"from": "synthetic_calibration", "seed": seed}},
    )
