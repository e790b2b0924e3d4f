"""The simulator calibrated to a log (``recsim_env.grounding``, ``SimConfig.calibration``).

Everything here runs on synthetic calibrations (tests/recsim_env/conftest.py puts a synthetic
``movielens-100k`` bundle in ``RECSIM_DATA_DIR``); the real MovieLens-100K is never needed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import platform
import re
import subprocess
import sys
import types
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from scipy import stats
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from test_state_io import assert_same_tree

import recsim_env
from recsim_env import Calibration, RecSimEnv, RecSimVectorEnv, SimConfig, grounding
from recsim_env.grounding import (
    calibration_dir,
    clear_calibration_cache,
    resolve_calibration,
    synthetic_calibration,
)
from recsim_env.state_io import load_tree, save_tree
from recsim_env.validation import ConfigError

ML = "recsim_env/MovieLens-v0"


def movielens_params() -> dict:
    """The params of the synthetic ``movielens-100k`` bundle of conftest.py."""
    return resolve_calibration("movielens-100k").params


@pytest.fixture
def cal_dir(tmp_path) -> Path:
    """A saved synthetic calibration with late items, 3 windows of 40 ticks."""
    cal = synthetic_calibration(
        num_items=120, num_topics=5, num_users=40, num_windows=3, window_ticks=40, future_items=15
    )
    return cal.save(tmp_path / "cal")


def _fields(cal: Calibration) -> dict:
    return {f: getattr(cal, f) for f in Calibration.__dataclass_fields__}


def _with(cal: Calibration, **changes) -> dict:
    return {**_fields(cal), **changes}


# ---------------------------------------------------------------------------------- the bundle
@pytest.mark.parametrize("string_ids", [False, True])
def test_save_load_round_trip_is_exact(tmp_path, string_ids):
    cal = synthetic_calibration(string_ids=string_ids, future_items=10)
    directory = cal.save(tmp_path / "c")
    assert sorted(p.name for p in directory.iterdir()) == ["calibration.json", "calibration.npz"]
    document = json.loads((directory / "calibration.json").read_text())
    assert document["format"] == "recsim-calibration" and document["version"] == 1
    assert document["shapes"]["item_topics"] == [200, 6] and document["window_ticks"] == 50
    for where in (directory, directory / "calibration.json", directory / "calibration.npz"):
        back = Calibration.load(where)
        for name, value in _fields(cal).items():
            if isinstance(value, np.ndarray):
                assert getattr(back, name).dtype == value.dtype, name
                np.testing.assert_array_equal(getattr(back, name), value, err_msg=name)
            else:
                assert getattr(back, name) == value, name
        assert back.fingerprint == cal.fingerprint
    assert cal.item_ids.dtype.kind == ("U" if string_ids else "i")
    assert cal.item_quality.dtype == np.float32 and cal.user_activity.dtype == np.float64
    assert not cal.item_topics.flags.writeable  # shared by every env of the process


def _bad_arrays(cal: Calibration) -> list[tuple[str, dict, str]]:
    m, k = cal.item_topics.shape
    topics_neg = cal.item_topics.copy()
    topics_neg[0, 0] = -0.1
    topics_big = cal.item_topics.copy()
    topics_big[0] = 0.0
    topics_big[0, 0] = 1.00005  # within the sum tolerance, but outside the observation space
    nan_interest = cal.user_interest.copy()
    nan_interest[3, 1] = np.nan
    dup = cal.item_ids.copy()
    dup[1] = dup[0]
    return [
        ("user_interest", {"item_topics": cal.item_topics[:, :-1]}, r"K=5 as in item_topics"),
        ("item_quality", {"item_quality": cal.item_quality[:-1]}, r"M=200"),
        ("item_quality", {"item_quality": cal.item_quality[:, None]}, r"shape \(M\)"),
        ("item_quality", {"item_quality": cal.item_quality + 3.5}, r"values in \[-3, 3\]"),
        ("item_appeal", {"item_appeal": cal.item_appeal - 5}, r"values in \[-3, 3\]"),
        ("item_length", {"item_length": cal.item_length * 0 + 0.2}, r"\[0.5, 1.5\]"),
        ("item_topics", {"item_topics": topics_neg}, r"values in \[0, 1\]"),
        ("item_topics", {"item_topics": topics_big}, r"values in \[0, 1\]"),
        ("item_topics", {"item_topics": cal.item_topics * 0.9}, "sum to 1"),
        ("item_birth", {"item_birth": cal.item_birth.astype(np.float64)}, "integer array"),
        ("item_ids", {"item_ids": dup}, "distinct ids"),
        ("item_ids", {"item_ids": cal.item_ids.astype(np.float64)}, "integer or unicode"),
        ("user_interest", {"user_interest": nan_interest}, "finite numbers"),
        ("user_interest", {"user_interest": cal.user_interest * 3}, r"\[-1, 1\]"),
        ("user_activity", {"user_activity": cal.user_activity * 2}, "summing to 1"),
        ("user_activity", {"user_activity": -cal.user_activity}, "non-negative"),
        ("trajectory", {"trajectory": cal.trajectory[:0]}, "non-empty"),
        ("trajectory", {"trajectory": cal.trajectory[:, :2]}, r"K=6"),
        ("window_ticks", {"window_ticks": 0}, r"integer in \[1,"),
        ("window_ticks", {"window_ticks": 2.5}, r"integer in \[1,"),
        ("name", {"name": ""}, "non-empty string"),
        ("params.intrest_weight", {"params": {"intrest_weight": 1.0}}, "a key in"),
        ("params.num_items", {"params": {"num_items": 5}}, "a key in"),
        ("params", {"params": {"interest_weight": -1.0}}, "interest_weight=-1.0"),
        ("params.item_churn", {"params": {"item_churn": 0.1}}, "catalogue is the log"),
        ("params", {"params": {"user_noise": object()}}, "JSON data"),
        ("report", {"report": [1, 2]}, "a dict"),
    ]


def test_every_bad_field_is_a_config_error_naming_it():
    cal = synthetic_calibration()
    for field, change, fragment in _bad_arrays(cal):
        with pytest.raises(ConfigError, match=f"Calibration\\.{field}") as err:
            Calibration(**_with(cal, **change))
        assert re.search(fragment, str(err.value)), (field, str(err.value))
        assert isinstance(err.value, ValueError)


def _rewrite_json(directory: Path, **changes) -> None:
    path = directory / "calibration.json"
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"version": 2}, r"calibration.json.version=2 \(allowed: 1"),
        ({"format": "something"}, "format='recsim-calibration'"),
        ({"window_ticks": "40"}, r"calibration.json.window_ticks='40' \(allowed: a JSON int"),
        ({"window_ticks": True}, "window_ticks=True"),
        ({"name": 3}, "calibration.json.name=3"),
        ({"params": [1]}, "calibration.json.params"),
        ({"report": None}, "calibration.json.report"),
        ({"shapes": {"item_ids": [120]}}, "calibration.json.shapes"),
    ],
)
def test_bad_json_is_refused_naming_the_field(cal_dir, changes, fragment):
    _rewrite_json(cal_dir, **changes)
    with pytest.raises(ConfigError, match=fragment) as err:
        Calibration.load(cal_dir)
    assert str(cal_dir) in str(err.value)


def test_shapes_that_disagree_with_the_json_and_foreign_npz_members_are_refused(cal_dir):
    document = json.loads((cal_dir / "calibration.json").read_text())
    shapes = dict(document["shapes"], item_ids=[7])
    _rewrite_json(cal_dir, shapes=shapes)
    with pytest.raises(ConfigError, match=r"calibration.npz:item_ids=<array \(120,\)"):
        Calibration.load(cal_dir)
    _rewrite_json(cal_dir, shapes=document["shapes"])
    with np.load(cal_dir / "calibration.npz") as npz:
        arrays = dict(npz)
    np.savez(cal_dir / "calibration.npz", **arrays, extra=np.zeros(3))
    with pytest.raises(ConfigError, match=r"calibration\.npz members"):
        Calibration.load(cal_dir)
    del arrays["trajectory"]
    np.savez(cal_dir / "calibration.npz", **arrays)
    with pytest.raises(ConfigError, match=r"calibration\.npz members"):
        Calibration.load(cal_dir)
    (cal_dir / "calibration.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a calibration"):
        Calibration.load(cal_dir)
    with pytest.raises(FileNotFoundError, match=r"calibration\.json is missing"):
        Calibration.load(cal_dir.parent / "nowhere")


class _Exploit:
    """Unpickling this would create a file: the tests check that it never exists."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_planted_pickle_is_never_loaded(cal_dir, tmp_path):
    marker = tmp_path / "pwned"
    # 1. the whole npz replaced by a pickle
    (cal_dir / "calibration.npz").write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(ConfigError, match="unreadable calibration arrays"):
        Calibration.load(cal_dir)
    # 2. an object array (a pickle inside the .npy member) in an otherwise valid npz
    cal = synthetic_calibration(num_items=120, num_topics=5, num_users=40, num_windows=3)
    arrays = {name: getattr(cal, name) for name in grounding._ARRAYS}
    arrays["item_ids"] = np.array([_Exploit(marker)] * 120, dtype=object)
    with open(cal_dir / "calibration.npz", "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ConfigError, match="pickled data, which is never loaded") as err:
        Calibration.load(cal_dir)
    assert "calibration.npz" in str(err.value)
    assert not marker.exists()
    # and the constructor refuses object arrays handed over in Python
    with pytest.raises(ConfigError, match=r"Calibration\.item_ids"):
        Calibration(**_with(cal, item_ids=np.array(list(range(200)), dtype=object)))


# ---------------------------------------------------------------------------------- resolving
def test_resolve_caches_by_path_and_rereads_changed_files(cal_dir):
    a = resolve_calibration(str(cal_dir))
    assert resolve_calibration(cal_dir) is a  # a Path too
    assert resolve_calibration(cal_dir / "calibration.json") is a
    assert resolve_calibration(a) is a
    envs = [RecSimVectorEnv(num_envs=2, calibration=str(cal_dir)) for _ in range(3)]
    assert all(e.world.calibration is a for e in envs)
    synthetic_calibration(
        num_items=120, num_topics=5, num_users=40, num_windows=3, window_ticks=40, seed=5
    ).save(cal_dir)
    b = resolve_calibration(str(cal_dir))
    assert b is not a and b.fingerprint != a.fingerprint
    with pytest.raises(ConfigError, match=r"invalid calibration='/no/such/dir' \(allowed: a known"):
        resolve_calibration("/no/such/dir")
    with pytest.raises(ConfigError, match="invalid calibration=3"):
        SimConfig.from_kwargs(calibration=3)


def test_fitted_params_are_defaults_and_explicit_kwargs_override(cal_dir):
    cal = resolve_calibration(cal_dir)
    cfg = SimConfig.from_kwargs(calibration=str(cal_dir))
    assert cfg.interest_weight == cal.params["interest_weight"] == 3.5
    assert cfg.user_noise == 0.2 and cfg.appeal_weight == SimConfig().appeal_weight
    assert (cfg.num_items, cfg.num_topics) == (120, 5)
    cfg = SimConfig.from_kwargs(calibration=str(cal_dir), interest_weight=1.0, num_items=120)
    assert cfg.interest_weight == 1.0 and cfg.user_noise == 0.2
    env = gym.make("recsim_env/Stationary-v0", calibration=str(cal_dir), user_noise=0.0)
    assert env.unwrapped.config.user_noise == 0.0 and env.unwrapped.config.interest_weight == 3.5
    # the registered id: its kwargs are explicit, the calibration's params fill the rest
    ml = gym.make(ML).unwrapped.config
    assert ml.returning_users and ml.horizon == "lifetime" and ml.item_embedding_dim == 0
    assert ml.lifetime_ticks == movielens_params()["lifetime_ticks"] == 300
    assert ml.gap_mean_max == movielens_params()["gap_mean_max"] == 40.0
    assert SimConfig(**ml.to_dict()) == ml  # a saved config rebuilds the same one


def test_sizes_come_from_the_calibration_and_churn_is_refused(cal_dir):
    with pytest.raises(ConfigError, match=r"invalid num_items=1000 \(allowed: 120, the num_items"):
        SimConfig.from_kwargs(calibration=str(cal_dir), num_items=1000)
    with pytest.raises(
        ConfigError, match=r"invalid num_topics=10 \(allowed: 5, .*leave num_topics"
    ):
        gym.make("recsim_env/DriftingUsers-v0", calibration=str(cal_dir), num_topics=10)
    with pytest.raises(ConfigError, match=r"invalid num_items=1000 \(allowed: 120"):
        SimConfig(calibration=str(cal_dir))  # direct construction checks them too
    with pytest.raises(ConfigError, match=r"invalid item_churn=0.002 .*fitted birth ticks"):
        gym.make("recsim_env/ColdStart-v0", calibration=str(cal_dir))


def _fake_heavy_modules(monkeypatch, *, load=None, calls=None):
    """Stand-ins for recsim_env.data / recsim_env.calibrate.fit (written by other helpers)."""
    calls = calls if calls is not None else []
    data = types.ModuleType("recsim_env.data")

    def load_movielens_100k(path=None, fetch_if_missing=True):
        calls.append(("load", fetch_if_missing))
        if load is not None:
            return load()
        return "log"

    def temporal_split(log, test_frac=0.2):
        calls.append(("split", log, test_frac))
        return "train", "test"

    data.load_movielens_100k = load_movielens_100k
    data.temporal_split = temporal_split
    calibrate = types.ModuleType("recsim_env.calibrate")
    fit_module = types.ModuleType("recsim_env.calibrate.fit")

    def fit(log, *, seed=0, **kwargs):
        calls.append(("fit", log, seed))
        return synthetic_calibration(name="movielens-100k", seed=99)

    fit_module.fit = fit
    calibrate.fit = fit_module
    for name, module in (
        ("recsim_env.data", data),
        ("recsim_env.calibrate", calibrate),
        ("recsim_env.calibrate.fit", fit_module),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_a_missing_known_calibration_is_fetched_fitted_on_train_and_saved(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("RECSIM_DATA_DIR", str(tmp_path / "home"))
    calls = _fake_heavy_modules(monkeypatch)
    env = gym.make(ML)
    assert calls == [("load", True), ("split", "log", 0.2), ("fit", "train", 0)]
    target = tmp_path / "home" / "calibrations" / "movielens-100k"
    assert (target / "calibration.json").is_file() and (target / "calibration.npz").is_file()
    assert env.unwrapped.world.calibration.fingerprint == Calibration.load(target).fingerprint
    assert "building it" in capsys.readouterr().err  # progress on stderr
    gym.make(ML)  # second time: read from disk, not built again
    assert len(calls) == 3
    assert not list(target.parent.glob(".*tmp"))  # no temporary directory left behind


def test_a_known_calibration_that_cannot_be_built_names_the_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSIM_DATA_DIR", str(tmp_path / "home"))

    def offline():
        raise OSError("network unreachable")

    _fake_heavy_modules(monkeypatch, load=offline)
    with pytest.raises(ConfigError) as err:
        gym.make(ML)
    message = str(err.value)
    assert "network unreachable" in message
    assert "recsim-data fetch movielens-100k" in message
    assert "recsim-calibrate movielens-100k --out" in message
    # the packages that build it are missing (no pandas, or not installed)
    monkeypatch.setitem(sys.modules, "recsim_env.data", None)
    with pytest.raises(ConfigError, match="recsim-data fetch movielens-100k") as err:
        gym.make(ML)
    assert "recsim-calibrate movielens-100k" in str(err.value)
    assert not (tmp_path / "home").exists()  # a failed build leaves nothing behind


def test_data_home_rule_without_the_data_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "recsim_env.data", None)  # not importable here
    monkeypatch.setenv("RECSIM_DATA_DIR", str(tmp_path / "d"))
    assert calibration_dir("x") == tmp_path / "d" / "calibrations" / "x"
    monkeypatch.delenv("RECSIM_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert grounding.data_home() == tmp_path / "xdg" / "recsim-env"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert grounding.data_home() == Path.home() / ".local" / "share" / "recsim-env"


def test_import_recsim_env_needs_numpy_and_gymnasium_only():
    code = (
        "import sys, recsim_env, gymnasium as gym; "
        "heavy=[m for m in ('pandas','sklearn','scipy','matplotlib','recsim_env.data',"
        "'recsim_env.calibrate') if m in sys.modules]; print(heavy); sys.exit(bool(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------------------------- the env
def _id_of_row(ids: np.ndarray) -> dict:
    return {v: i for i, v in enumerate(ids.tolist())}


@pytest.mark.parametrize("string_ids", [False, True])
def test_info_ids_name_the_real_users_and_items(tmp_path, string_ids):
    cal = synthetic_calibration(string_ids=string_ids, future_items=20, window_ticks=30)
    directory = cal.save(tmp_path / "c")
    envs = RecSimVectorEnv(num_envs=64, calibration=str(directory), max_session_steps=6)
    item_row, user_row = _id_of_row(cal.item_ids), _id_of_row(cal.user_ids)
    _, info = envs.reset(seed=0)
    cat, core = envs.world.catalogue, envs.core
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(60):
        assert info["user_id"].shape == (64,) and info["item_id"].shape == (64, 20)
        np.testing.assert_array_equal(info["item_id"], cat.item_ids[core.candidates])
        rows = np.vectorize(item_row.get)(info["item_id"])
        # the candidates' hidden truth is the calibration's, row for row
        np.testing.assert_array_equal(cat.quality[core.candidates], cal.item_quality[rows])
        np.testing.assert_array_equal(cat.topics[core.candidates], cal.item_topics[rows])
        np.testing.assert_array_equal(cat.birth[core.candidates], cal.item_birth[rows])
        np.testing.assert_array_equal(info["user_id"], cal.user_ids[core.users.real_index])
        assert all(u in user_row for u in info["user_id"].tolist())
        before = info["user_id"].copy()
        _, _, term, trunc, info = envs.step(rng.integers(0, 20, 64))
        done = term | trunc
        if done.any():  # final_info names the user whose session ended and its last candidates
            ended += done.sum()
            np.testing.assert_array_equal(info["final_info"]["user_id"][done], before[done])
            assert info["final_info"]["item_id"].shape == (64, 20)
    assert ended > 100
    # the observed topics of a candidate are its real topics
    items, _ = envs.obs_layout.split(envs.core.obs)
    rows = np.vectorize(item_row.get)(info["item_id"])
    np.testing.assert_array_equal(items[..., : cal.num_topics], cal.item_topics[rows])
    single = RecSimEnv(calibration=str(directory))
    _, info = single.reset(seed=0)
    assert np.shape(info["user_id"]) == () and info["item_id"].shape == (20,)
    _, _, _, _, info = single.step(0)
    assert np.shape(info["user_id"]) == () and info["user_id"] in user_row


def test_uncalibrated_envs_have_no_id_keys():
    _, info = RecSimVectorEnv(num_envs=2).reset(seed=0)
    assert "user_id" not in info and "item_id" not in info
    assert "real_index" not in RecSimVectorEnv(num_envs=2).state_dict()["users"]


def test_new_users_are_drawn_by_activity():
    """Chi-square of 40,000 new users against ``user_activity`` (and each keeps its identity)."""
    cal = resolve_calibration("movielens-100k")
    b = 40_000
    envs = gym.make_vec(ML, autoreset_mode="same_step", num_envs=b)
    envs.reset(seed=3)
    counts = np.bincount(envs.unwrapped.core.users.real_index, minlength=cal.num_users)
    expected = b * cal.user_activity
    big = expected >= 5  # pool the rare users into one cell
    observed, expected = counts[big], expected[big]
    if not big.all():
        observed = np.append(observed, counts[~big].sum())
        expected = np.append(expected, b * cal.user_activity[~big].sum())
    result = stats.chisquare(observed, expected)
    assert result.pvalue > 1e-3, result
    # the draws are not uniform: the most active user is drawn far more than the least
    assert counts[cal.user_activity.argmax()] > 5 * max(counts[cal.user_activity.argmin()], 1)
    # the interest is the real user's vector + user_noise · N(0, 1), clipped (no drift at clock 0)
    core = envs.unwrapped.core
    resid = core.users.interest - cal.user_interest[core.users.real_index]
    inside = np.abs(core.users.interest) < 1.0  # unclipped entries
    assert abs(resid[inside].std() - movielens_params()["user_noise"]) < 0.01
    assert abs(resid[inside].mean()) < 0.01


def test_a_returning_user_stays_the_same_real_user():
    envs = gym.make_vec(
        ML, autoreset_mode="same_step", num_envs=256, lifetime_ticks=400, max_session_steps=5
    )
    _, info = envs.reset(seed=1)
    user = info["user_id"].copy()
    returned = renewed = 0
    for _ in range(80):
        _, _, _, _, info = envs.step(np.zeros(256, np.int64))
        same_life = ~info["lifetime_end"]  # sessions may end, the lifetime goes on
        np.testing.assert_array_equal(info["user_id"][same_life], user[same_life])
        ended = info["lifetime_end"]
        if ended.any():
            np.testing.assert_array_equal(info["final_info"]["user_id"][ended], user[ended])
        returned += int(info["returned"].sum())
        renewed += int((info["user_id"][ended] != user[ended]).sum())
        user = info["user_id"].copy()
    assert returned > 50 and renewed > 20


def test_unborn_items_are_never_candidates_until_born(cal_dir):
    cal = resolve_calibration(cal_dir)
    late = cal.item_ids[cal.item_birth > 0]
    assert len(late) == 15
    envs = RecSimVectorEnv(num_envs=200, calibration=str(cal_dir))
    _, info = envs.reset(seed=0)
    cat, core = envs.world.catalogue, envs.core  # (a seeded reset makes a new catalogue)
    first = set(cat.item_ids[: envs.config.num_candidates].tolist())  # always available
    seen_late = set()
    for _ in range(3 * 40 + 10):
        clock = envs.world.clock
        shown = info["item_id"]
        births = cat.birth[core.candidates]
        assert np.all((births <= clock) | np.isin(shown, list(first))), clock
        seen_late |= set(shown[births > 0].tolist())
        _, _, _, _, info = envs.step(np.zeros(200, np.int64))
    assert seen_late == set(late.tolist()) - first  # every late item does arrive
    assert cat.available == cal.num_items
    assert np.all(np.diff(cat.birth) >= 0)  # the catalogue is in order of birth


def test_trajectory_replay_moves_the_population_window_by_window(cal_dir):
    cal = resolve_calibration(cal_dir)
    w = cal.window_ticks
    envs = RecSimVectorEnv(
        num_envs=3000, calibration=str(cal_dir), max_session_steps=1, drift_pull=0.0
    )
    envs.reset(seed=0)
    drift, core = envs.world.drift, envs.core
    assert np.allclose(drift.mean, cal.trajectory[0])
    centre_means, events = {}, 0
    for _ in range(4 * w):
        _, _, _, _, info = envs.step(np.zeros(3000, np.int64))
        clock = envs.world.clock
        events += int(info["drift_event"].any())
        for window in range(cal.num_windows):
            if clock == int((window + 0.5) * w):  # the centre of window `window`
                np.testing.assert_allclose(drift.mean, cal.trajectory[window], atol=1e-6)
                centre_means[window] = core.users.interest.mean(axis=0)  # all new this step
        if clock == int(0.5 * w) + w // 4:  # between two centres: linear
            halfway = 0.75 * cal.trajectory[0] + 0.25 * cal.trajectory[1]
            np.testing.assert_allclose(drift.mean, halfway, atol=1e-6)
    np.testing.assert_allclose(drift.mean, cal.trajectory[-1], atol=1e-6)  # holds after the last
    assert events == 0  # replay is gradual: no drift events
    # new users follow: their mean moved as the trajectory moved
    moved = np.stack([centre_means[i] - centre_means[0] for i in (1, 2)]).ravel()
    wanted = np.stack([cal.trajectory[i] - cal.trajectory[0] for i in (1, 2)]).ravel()
    assert np.corrcoef(moved, wanted)[0, 1] > 0.9
    assert np.abs(moved - wanted).mean() < 0.15  # clipping at ±1 shrinks large moves a little


def test_replay_combines_with_a_drift_spec(cal_dir):
    cal = resolve_calibration(cal_dir)
    spec = [{"schedule": "changepoints", "times": [30], "process": "jump"}]
    envs = RecSimVectorEnv(num_envs=4, calibration=str(cal_dir), drift=spec)
    plain = RecSimVectorEnv(num_envs=4, calibration=str(cal_dir))
    envs.reset(seed=0)
    plain.reset(seed=0)
    events = []
    for _ in range(100):
        _, _, _, _, info = envs.step(np.zeros(4, np.int64))
        plain.step(np.zeros(4, np.int64))
        events.append(bool(info["drift_event"][0]))
    assert events.index(True) == 29 and sum(events) == 1  # only the spec's jump is an event
    d = envs.world.drift
    replay = plain.world.drift.mean - cal.trajectory[0]  # plain: pure replay
    np.testing.assert_allclose(d.mean, np.clip(d.glide_to + replay, -1, 1), atol=1e-6)
    assert not np.allclose(d.mean, plain.world.drift.mean)


@pytest.mark.parametrize("env_id", [ML, "recsim_env/Stationary-v0"])
def test_checkers_pass_on_calibrated_envs(env_id, cal_dir):
    kwargs = {} if env_id == ML else {"calibration": str(cal_dir), "slate_size": 3}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(gym.make(env_id, **kwargs).unwrapped, skip_render_check=True)
        sb3_check_env(gym.make(env_id, **kwargs), warn=True)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "bound" in m.lower() or "inf" in m.lower()], messages


def test_vector_env_matches_single_envs_on_a_calibrated_env():
    b, steps = 5, 400
    kwargs = dict(max_session_steps=12, lifetime_ticks=150)
    vec = gym.make_vec(ML, autoreset_mode="same_step", num_envs=b, **kwargs)
    singles = [gym.make(ML, user_index=i, **kwargs) for i in range(b)]
    v_obs, v_info = vec.reset(seed=4)
    for i, env in enumerate(singles):
        o, info = env.reset(seed=4)
        np.testing.assert_array_equal(o, v_obs[i])
        assert info["user_id"] == v_info["user_id"][i]
    policy = np.random.default_rng(1)
    ended = 0
    for _ in range(steps):
        actions = policy.integers(0, 20, b)
        v_obs, v_r, v_term, v_trunc, v_info = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, term, trunc, info = env.step(int(actions[i]))
            assert (term, trunc, r) == (v_term[i], v_trunc[i], v_r[i])
            if term or trunc:
                np.testing.assert_array_equal(o, v_info["final_obs"][i])
                assert info["user_id"] == v_info["final_info"]["user_id"][i]
                o, info = env.reset()
                ended += 1
            np.testing.assert_array_equal(o, v_obs[i])
            assert info["user_id"] == v_info["user_id"][i]
            np.testing.assert_array_equal(info["item_id"], v_info["item_id"][i])
    assert ended > 10


def test_exact_resume_through_a_checkpoint_file(tmp_path):
    a = gym.make_vec(ML, autoreset_mode="same_step", num_envs=16, max_session_steps=8)
    a.reset(seed=9)
    rng = np.random.default_rng(0)
    for _ in range(150):  # past the first window's centre and some births
        a.step(rng.integers(0, 20, 16))
    state = a.unwrapped.state_dict()
    assert state["users"]["real_index"].shape == (16,)
    assert state["world"]["calibration"] == a.unwrapped.world.calibration.fingerprint
    back = load_tree(save_tree(tmp_path / "env", state))
    assert_same_tree(state, back)
    b = gym.make_vec(ML, autoreset_mode="same_step", num_envs=16, max_session_steps=8)
    b.unwrapped.load_state_dict(back)
    for _ in range(250):
        act = rng.integers(0, 20, 16)
        oa, ra, ta, ua, ia = a.step(act)
        ob, rb, tb, ub, ib = b.step(act)
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_array_equal(ta | ua, tb | ub)
        np.testing.assert_array_equal(ia["user_id"], ib["user_id"])
        np.testing.assert_array_equal(ia["item_id"], ib["item_id"])
    assert a.unwrapped.world.catalogue.available == b.unwrapped.world.catalogue.available


def test_a_state_of_another_calibration_is_refused(cal_dir):
    a = gym.make_vec(ML, autoreset_mode="same_step", num_envs=4)
    a.reset(seed=0)
    other = RecSimVectorEnv(
        num_envs=4, calibration=str(cal_dir), returning_users=True, horizon="lifetime"
    )
    other.reset(seed=0)
    with pytest.raises(ValueError, match=r"real_index|calibration fingerprint|candidates"):
        other.load_state_dict(copy.deepcopy(a.unwrapped.state_dict()))
    plain = RecSimVectorEnv(num_envs=4, num_items=200, num_topics=8)
    plain.reset(seed=0)
    state = copy.deepcopy(a.unwrapped.state_dict())
    with pytest.raises(ValueError, match="calibration fingerprint"):
        plain.load_state_dict({**state, "lifetimes": None})
    bad = copy.deepcopy(a.unwrapped.state_dict())
    bad["users"]["real_index"][0] = 10**6
    with pytest.raises(ValueError, match=r"users\.real_index"):
        a.unwrapped.load_state_dict(bad)


def test_an_evaluation_follower_shares_the_calibrated_world(cal_dir):
    train = RecSimVectorEnv(num_envs=4, calibration=str(cal_dir))
    train.reset(seed=0)
    follower = RecSimVectorEnv(num_envs=4, calibration=str(cal_dir), world=train.world)
    _, info = follower.reset(seed=7)
    assert follower.world.catalogue is train.world.catalogue and "user_id" in info
    with pytest.raises(ValueError, match="same calibration"):
        RecSimVectorEnv(num_envs=2, num_items=120, num_topics=5, world=train.world)


# ---------------------------------------------------------------------------------- unchanged
def _feed(h, value) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            h.update(key.encode())
            _feed(h, value[key])
    else:
        a = np.ascontiguousarray(np.asarray(value))
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())


def trajectory_hash(env_id: str, steps: int = 2100, num_envs: int = 4, **kwargs) -> str:
    """SHA-256 of everything a fixed-seed run returns (vector env, then a single env)."""
    envs = gym.make_vec(env_id, num_envs=num_envs, autoreset_mode="same_step", **kwargs)
    cfg = envs.unwrapped.config
    h = hashlib.sha256()
    obs, info = envs.reset(seed=123)
    _feed(h, obs)
    _feed(h, info)
    pol = np.random.default_rng(0)
    for _ in range(steps):
        if cfg.slate_mode:
            order = np.argsort(pol.random((num_envs, cfg.num_candidates)), axis=1)
            a = order[:, : cfg.slate_size]
        else:
            a = pol.integers(0, cfg.num_candidates, num_envs)
        for value in envs.step(a):
            _feed(h, value)
    env = gym.make(env_id, **kwargs)
    obs, info = env.reset(seed=5)
    _feed(h, obs)
    _feed(h, info)
    for _ in range(100):
        a = np.arange(cfg.slate_size) if cfg.slate_mode else pol.integers(0, cfg.num_candidates)
        obs, r, term, trunc, info = env.step(a)
        _feed(h, obs)
        _feed(h, info)
        _feed(h, np.array([r, term, trunc]))
        if term or trunc:
            obs, info = env.reset()
            _feed(h, obs)
            _feed(h, info)
    return h.hexdigest()


# Computed with this function on main at fef20c7, before calibrations existed (numpy 2.4.6, x86_64).
REFERENCE_HASHES = [
    (
        "recsim_env/AbruptShift-v0",
        {},
        "3c3cd92664213ca3320ddc51bba38039fe60b365f2c5863d7742310f9fc363d8",
    ),
    (
        "recsim_env/ColdStart-v0",
        {},
        "3fce49ac83cf4cb01fb880cdcbe88b1270dc3e4ed5565c91c6b56a6b66177052",
    ),
    (
        "recsim_env/DriftingUsers-v0",
        {},
        "8f8ec279d08a00e4165b7561d4025de3bbd8e14312a017bc02a0ed1b2d64bc73",
    ),
    (
        "recsim_env/LongTerm-v0",
        {},
        "24d906428df6d97b153ac3a977a5b0305aceb961f508c4e7d54ab73e7849d46e",
    ),
    (
        "recsim_env/Seasonal-v0",
        {},
        "f1951c9d3f7c13a7fb414ff3e79479cd81a6dd046bb2a4daa04ba27c57148654",
    ),
    (
        "recsim_env/Stationary-v0",
        {},
        "f9d14fe6451b7168915085a119b8e2e12f32ebcabb4afcc5fa27fd3446b9e5c1",
    ),
    (
        "recsim_env/DriftingUsers-v0",
        {"slate_size": 3, "observability": "full", "item_churn": 0.01},
        "d9408a9ea9e317667e28c239aec4c712149c89356d41940347663e6245db7ea9",
    ),
    (
        "recsim_env/LongTerm-v0",
        {"horizon": "session", "notify_drift": True, "drift": "seasonal"},
        "32528efa412e428cc2bef3d7dce5a34f296d127a4b3d25f1c5e7afbb3a937f9f",
    ),
]
REFERENCE_PLATFORM = ("2.4.6", "x86_64")


@pytest.mark.skipif(
    (np.__version__, platform.machine()) != REFERENCE_PLATFORM,
    reason=f"reference hashes were computed with numpy/machine {REFERENCE_PLATFORM}; float "
    "results may differ in the last bit elsewhere",
)
@pytest.mark.parametrize(("env_id", "kwargs", "digest"), REFERENCE_HASHES)
def test_uncalibrated_ids_are_bit_identical_to_before_calibrations(env_id, kwargs, digest):
    assert trajectory_hash(env_id, **kwargs) == digest


def test_every_registered_id_is_covered():
    assert ML in recsim_env.ENV_IDS
    assert gym.spec(ML).kwargs["calibration"] == "movielens-100k"


def test_clear_cache_forces_a_reread(cal_dir):
    a = resolve_calibration(cal_dir)
    clear_calibration_cache()
    assert resolve_calibration(cal_dir) is not a


def test_drift_moves_a_real_user_with_the_population_and_keeps_its_identity():
    """Long gaps away and a strong pull: the users who come back still differ as their real
    selves do (pulled towards their own interest moved by the trajectory, not onto the mean)."""
    cal = resolve_calibration("movielens-100k")
    envs = gym.make_vec(
        ML,
        autoreset_mode="same_step",
        num_envs=512,
        drift_pull=0.05,
        gap_mean_min=150.0,
        gap_mean_max=200.0,
        return_prob_min=0.99,
        return_prob_max=0.99,
        lifetime_ticks=5000,
        max_session_steps=5,
    )
    envs.reset(seed=2)
    core = envs.unwrapped.core
    for _ in range(400):
        envs.step(np.zeros(512, np.int64))
    back = core.lifetimes.visits >= 2
    assert back.sum() > 100
    own = cal.user_interest[core.users.real_index[back]]
    shift = envs.unwrapped.world.drift.mean - cal.trajectory[0]
    interest = core.users.interest[back]
    target = np.clip(core.users.centre[back] + shift, -1, 1)
    # after (1 - 0.05)^150 of the way, a user is where its own target is, not at the mean
    assert np.abs(interest - target).max() < 0.05
    spread = interest.std(axis=0).mean()
    assert spread > 0.5 * own.std(axis=0).mean()  # users have not collapsed onto the mean
    assert np.corrcoef((interest - shift).ravel(), own.ravel())[0, 1] > 0.8


@pytest.mark.slow
def test_the_real_movielens_calibration(user_data_home, monkeypatch):
    """On the real MovieLens-100K (fetched and fitted into the user's data home on first use):
    943 real users, the log's item ids, and the env passes the checkers and vector ≡ single."""
    monkeypatch.setenv("RECSIM_DATA_DIR", str(user_data_home))
    try:
        cal = resolve_calibration("movielens-100k")
    except ConfigError as err:
        pytest.skip(f"MovieLens-100K calibration not available here: {err}")
    assert cal.num_users == 943 and cal.num_items <= 1682
    assert set(cal.item_ids.tolist()) <= set(range(1, 1683))
    assert set(cal.user_ids.tolist()) == set(range(1, 944))
    env = gym.make(ML)
    gym_check_env(env.unwrapped, skip_render_check=True)
    envs = gym.make_vec(ML, autoreset_mode="same_step", num_envs=256)
    _, info = envs.reset(seed=0)
    for _ in range(200):
        _, _, _, _, info = envs.step(info["oracle_action"])
    assert np.isin(info["item_id"], cal.item_ids).all()
    assert np.isin(info["user_id"], cal.user_ids).all()
    assert len(np.unique(info["user_id"])) > 100
