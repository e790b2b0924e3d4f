"""``recsim_env.state_io``: pickle-free checkpoint files of plain data trees, read back exactly."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from recsim_env import ENV_IDS, RecSimEnv, RecSimVectorEnv
from recsim_env.state_io import CheckpointError, load_tree, save_tree


def assert_same_tree(a, b, where="tree"):
    """Equal values *and* equal types all the way down (tuples stay tuples, dtypes stay)."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_tree(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def every_kind_of_leaf():
    rng = np.random.default_rng(0)
    return {
        "none": None,
        "flags": [True, False],
        "ints": [0, -7, 2**100, -(2**70)],
        "floats": [0.1, -0.0, 1e-310, 1.7976931348623157e308, float("inf"), float("nan")],
        "text": 'héllo "quoted" \n',
        "tuple": (1, (2.5, "x"), []),
        "empty": {"dict": {}, "list": [], "tuple": ()},
        "int_keys": {0: "a", 7: [1], -1: None},
        "looks_like_a_marker": {"__tuple__": [1, 2]},
        "nested_marker": {"__dict__": {"__array__": "a0"}},
        "arrays": [
            rng.random((3, 4)).astype(np.float32),
            np.arange(5, dtype=np.int64),
            np.array([True, False]),
            np.array(2**63 + 5, dtype=np.uint64),  # 0-d
            np.zeros((0, 3), np.float64),
            np.asfortranarray(rng.random((2, 3))),
            rng.random((4, 4))[::2, 1:],  # a non-contiguous view
            np.array(["ab", "c"]),
        ],
        "scalars": [np.float32(1.5), np.int64(-3), np.bool_(True), np.uint8(255)],
        "rng": np.random.default_rng(123).bit_generator.state,
    }


def test_every_kind_of_leaf_round_trips_exactly(tmp_path):
    tree = every_kind_of_leaf()
    path = save_tree(tmp_path / "ckpt", tree)
    assert path == tmp_path / "ckpt" and path.is_file()  # exactly the path given, no suffix
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary file left behind
    back = load_tree(path)
    assert_same_tree(tree, back)
    # an RNG state restored from the file continues the same stream
    restored = np.random.default_rng()
    restored.bit_generator.state = back["rng"]
    np.testing.assert_array_equal(restored.random(5), np.random.default_rng(123).random(5))


def test_the_file_is_an_npz_of_arrays_and_a_json_structure(tmp_path):
    save_tree(tmp_path / "ckpt", {"a": np.arange(3), "b": [1, "two"]})
    with np.load(tmp_path / "ckpt", allow_pickle=False) as npz:
        document = json.loads(bytes(npz["tree"]).decode())
        assert document["format"] == "recsim-state-tree" and document["version"] == 1
        assert document["tree"]["b"] == [1, "two"]
        np.testing.assert_array_equal(npz[document["tree"]["a"]["__array__"]], np.arange(3))


@pytest.mark.parametrize(
    ("tree", "where"),
    [
        ({"a": np.array([object()], dtype=object)}, r"tree\.a: arrays of dtype object"),
        ({"a": [1, {2, 3}]}, r"tree\.a\[1\]: set is not plain data"),
        ({"a": {(1, 2): 3}}, r"tree\.a: dict key \(1, 2\)"),
        ({"f": lambda: 0}, r"tree\.f: function is not plain data"),
        ({"torch": pytest}, r"tree\.torch: module is not plain data"),
    ],
)
def test_unknown_types_are_refused_at_save_time_naming_the_entry(tmp_path, tree, where):
    with pytest.raises(TypeError, match=where):
        save_tree(tmp_path / "ckpt", tree)
    assert not list(tmp_path.iterdir())  # nothing written


def _corrupt_files(tmp_path):
    good = save_tree(tmp_path / "good", {"x": np.arange(100), "y": "text"})
    data = good.read_bytes()
    files = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "garbage": b"\x00\x01not a checkpoint at all" * 10,
        "bare npy": None,
        "npz without tree": None,
        "wrong format": None,
        "missing array": None,
        "object array": None,
        "malformed json": None,
    }
    for name in list(files):
        path = tmp_path / name.replace(" ", "_")
        if files[name] is not None:
            path.write_bytes(files[name])
        elif name == "bare npy":
            with open(path, "wb") as f:
                np.save(f, np.arange(3))
        elif name == "npz without tree":
            with open(path, "wb") as f:
                np.savez(f, a=np.arange(3))
        elif name == "object array":
            with open(path, "wb") as f:
                tree = json.dumps({"format": "recsim-state-tree", "version": 1,
                                   "tree": {"__array__": "a0"}})  # fmt: skip
                np.savez(f, tree=np.frombuffer(tree.encode(), np.uint8),
                         a0=np.array([{"x": 1}], dtype=object))  # fmt: skip
        else:
            document = {
                "wrong format": {"format": "something-else", "version": 1, "tree": 1},
                "missing array": {
                    "format": "recsim-state-tree",
                    "version": 1,
                    "tree": {"__array__": "a9"},
                },
                "malformed json": None,
            }[name]
            raw = b"{not json" if document is None else json.dumps(document).encode()
            with open(path, "wb") as f:
                np.savez(f, tree=np.frombuffer(raw, np.uint8))
        files[name] = path
    return files


def test_damaged_or_foreign_files_raise_checkpoint_error_naming_the_file(tmp_path):
    for name, path in _corrupt_files(tmp_path).items():
        with pytest.raises(CheckpointError) as err:
            load_tree(path)
        assert str(path) in str(err.value), (name, str(err.value))
        assert isinstance(err.value, ValueError)
    with pytest.raises(FileNotFoundError):
        load_tree(tmp_path / "nothing here")


def test_a_planted_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('pwned')",))

    path = tmp_path / "ckpt"
    path.write_bytes(pickle.dumps({"state": Payload()}))
    with pytest.raises(CheckpointError, match="it is a pickle") as err:
        load_tree(path)
    assert str(path) in str(err.value)
    assert not marker.exists()
    # and a zip member that is a pickle is not unpickled either
    with zipfile.ZipFile(tmp_path / "zipped", "w") as z:
        z.writestr("tree.npy", pickle.dumps(Payload()))
    with pytest.raises(CheckpointError):
        load_tree(tmp_path / "zipped")
    assert not marker.exists()


class _Touch:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_an_object_array_smuggled_into_a_valid_file_is_refused_not_executed(tmp_path):
    """A file in the right format whose tree points at an object array (a pickle inside .npy)."""
    marker = tmp_path / "executed"
    path = save_tree(tmp_path / "ckpt", {"x": np.zeros(2)})
    with np.load(path) as npz:
        members = {name: npz[name] for name in npz.files}
    crafted = np.empty(1, dtype=object)
    crafted[0] = _Touch(marker)
    members[next(k for k in members if k != "tree")] = crafted
    with open(path, "wb") as f:
        np.savez(f, **members)
    with pytest.raises(CheckpointError):
        load_tree(path)
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Touch(marker)))  # the payload is live: unpickling it does run
    assert marker.exists()


SIM_KWARGS = dict(
    drift=[
        {"schedule": "periodic", "period": 3, "process": "seasonal", "num_profiles": 3},
        {"schedule": "periodic", "period": 1, "process": "ou"},
        {"schedule": "poisson", "rate": 0.2, "process": "trending", "ramp": 5},
    ],
    returning_users=True,
    slate_size=2,
    item_churn=0.01,
    item_embedding_dim=2,
    observability="full",
    max_session_steps=8,
)


def test_simulator_state_is_a_plain_tree_that_round_trips_exactly(tmp_path):
    """The runner checkpoints ``env.state_dict()`` (users, returning-user lifetimes, catalogue,
    drift with its seasonal profiles, RNG states) with ``save_tree``: it must come back equal and
    continue the same trajectory."""
    rng = np.random.default_rng(1)

    def slates():  # distinct random slates of 2 of the 20 candidates, one per user
        return np.argsort(rng.random((3, 20)), axis=1)[:, :2]

    env = RecSimVectorEnv(num_envs=3, **SIM_KWARGS)
    env.reset(seed=1)
    for _ in range(25):
        env.step(slates())
    state = env.state_dict()
    assert state["world"]["drift"]["profiles"] and "lifetimes" in state
    back = load_tree(save_tree(tmp_path / "env", state))
    assert_same_tree(state, back)

    resumed = RecSimVectorEnv(num_envs=3, **SIM_KWARGS)
    resumed.load_state_dict(back)
    for _ in range(25):
        actions = slates()
        a, b = env.step(actions), resumed.step(actions)
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        assert a[4].keys() == b[4].keys()
        for key in a[4]:
            if isinstance(a[4][key], np.ndarray):
                np.testing.assert_array_equal(a[4][key], b[4][key], err_msg=key)


def test_single_env_state_round_trips_exactly(tmp_path):
    env = RecSimEnv(drift="mixed")
    env.reset(seed=4)
    for t in range(30):
        env.step(t % 20)
    back = load_tree(save_tree(tmp_path / "env", env.state_dict()))
    assert_same_tree(env.state_dict(), back)
    resumed = RecSimEnv(drift="mixed")
    resumed.load_state_dict(back)
    for t in range(30):
        a, b = env.step(t % 20), resumed.step(t % 20)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]


def test_a_state_of_another_batch_size_is_refused_before_anything_changes(tmp_path):
    small = RecSimVectorEnv(num_envs=3)
    small.reset(seed=0)
    big = RecSimVectorEnv(num_envs=4)
    big.reset(seed=1)
    before = big.state_dict()
    with pytest.raises(ValueError, match=r"candidates of shape \(3, 20\) for an env of num_envs=4"):
        big.load_state_dict(load_tree(save_tree(tmp_path / "env", small.state_dict())))
    assert_same_tree(big.state_dict(), before)


@pytest.mark.parametrize("env_id", sorted(ENV_IDS))
def test_every_registered_id_resumes_exactly_from_a_checkpoint_file(env_id, tmp_path):
    """``MovieLens-v0`` runs on the synthetic calibration of conftest.py."""
    rng = np.random.default_rng(2)
    a = gym.make_vec(env_id, num_envs=4, num_items=200, max_session_steps=10)
    a.reset(seed=6)
    for _ in range(60):
        a.step(rng.integers(0, 20, 4))
    state = a.unwrapped.state_dict()
    back = load_tree(save_tree(tmp_path / "env", state))
    assert_same_tree(state, back)
    b = gym.make_vec(env_id, num_envs=4, num_items=200, max_session_steps=10)
    b.unwrapped.load_state_dict(back)
    for _ in range(60):
        actions = rng.integers(0, 20, 4)
        x, y = a.step(actions), b.step(actions)
        for u, v in zip(x[:4], y[:4], strict=True):
            np.testing.assert_array_equal(u, v)
        assert x[4].keys() == y[4].keys()
        for key, value in x[4].items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, y[4][key], err_msg=key)
