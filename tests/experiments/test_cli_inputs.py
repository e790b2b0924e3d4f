"""Every input of ``recsim-tune`` and of the Python env API is checked (issue 19): a clear error that
names the option, the value and what is allowed — or a correct result — never a traceback.

The option parsing of ``recsim-tune`` is driven with random values (Hypothesis); the env API cases
are the ones a careful user met: ``reset(seed=[])``, a ``world=`` of another configuration, a
``load_state_dict`` of garbage.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.run.config import ConfigError
from experiments.run.job import run
from experiments.tune.cli import MAX_SEED, main, parse_args
from recsim_env.vector_env import RecSimVectorEnv

INT_OPTIONS = {
    "--n-trials": 1,
    "--seed": 0,
    "--n-startup-trials": 0,
    "--prune-startup-trials": 0,
    "--prune-warmup-steps": 0,
}
TEXT_OPTIONS = ("--space", "--study-name", "--storage", "--tune-dir", "--metric")

values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e3", "0x10", "1_000", "true", "-0", "٣"]),
    st.text(max_size=12),
)
option_lists = st.lists(
    st.tuples(st.sampled_from([*INT_OPTIONS, "--timeout", "--direction", *TEXT_OPTIONS]), values),
    max_size=5,
)


def _argv(pairs) -> list[str]:
    return [f"{option}={value}" for option, value in pairs]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(option_lists)
def test_recsim_tune_options_are_a_clear_error_or_a_checked_result(pairs):
    argv = _argv(pairs)
    try:
        args = parse_args(argv)
    except ConfigError as exc:  # the message names the option (argparse's or ours)
        message = str(exc)
        assert message and "Traceback" not in message
        assert any(option in message for option, _ in pairs) or "argument" in message, message
        return
    for option, lo in INT_OPTIONS.items():
        value = getattr(args, option.removeprefix("--").replace("-", "_"))
        assert isinstance(value, int) and value >= lo
    assert 0 <= args.seed <= MAX_SEED
    assert args.timeout is None or (math.isfinite(args.timeout) and args.timeout > 0)
    assert args.direction in (None, "maximize", "minimize")
    for option in TEXT_OPTIONS:
        value = getattr(args, option.removeprefix("--").replace("-", "_"))
        assert value is None or (value.strip() and "\x00" not in value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--timeout", "-1"], "invalid --timeout=-1.0 (allowed: a finite number > 0)"),
        (["--timeout", "nan"], "invalid --timeout=nan"),
        (["--n-startup-trials", "-3"], "invalid --n-startup-trials=-3 (allowed: an integer >= 0)"),
        (["--n-trials", "0"], "invalid --n-trials=0 (allowed: an integer >= 1)"),
        (["--seed", str(2**32)], "invalid --seed=4294967296"),
        (["--prune-warmup-steps", "-1"], "invalid --prune-warmup-steps=-1"),
        (["--n-trials", "x"], "argument --n-trials: invalid int value: 'x'"),
        (["--space", "no-such-space"], "no search space 'no-such-space'"),
        (["--space", "bad\x00name"], "invalid --space="),
    ],
)
def test_recsim_tune_exits_2_with_a_clear_message(argv, message, capsys, tmp_path):
    assert main([*argv, "--tune-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not any(tmp_path.iterdir())  # nothing was started


# ---------------------------------------------------------------------------------------- env API
def test_vector_reset_with_an_empty_seed_list_is_a_clear_error():
    env = RecSimVectorEnv(num_envs=2)
    with pytest.raises(ConfigError, match=r"invalid seed=\[\] \(allowed: an integer >= 0, None"):
        env.reset(seed=[])
    obs, _ = env.reset(seed=[3, 4])  # one world: the first seed is used
    np.testing.assert_array_equal(obs, RecSimVectorEnv(num_envs=2).reset(seed=3)[0])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"num_topics": 4}, "num_topics"), ({"num_items": 50}, "num_items"), ({}, "drift")],
)
def test_a_world_of_another_config_is_refused_at_construction(kwargs, field):
    owner = RecSimVectorEnv(num_envs=2, drift="abrupt", **kwargs)
    with pytest.raises(ConfigError, match=rf"invalid world= \(allowed: .*\): .*{field}="):
        RecSimVectorEnv(num_envs=2, world=owner.world)
    follower = RecSimVectorEnv(num_envs=3, world=owner.world, drift="abrupt", **kwargs)
    follower.reset(seed=0)  # the same settings: accepted


@pytest.mark.parametrize("garbage", [{}, {"candidates": 1}, "garbage", None, [1, 2]])
def test_load_state_dict_of_garbage_is_a_clear_value_error(garbage):
    env = RecSimVectorEnv(num_envs=2)
    env.reset(seed=0)
    before = env.state_dict()
    with pytest.raises(ValueError, match="inconsistent simulator state: not a state_dict"):
        env.load_state_dict(garbage)
    np.testing.assert_array_equal(env.state_dict()["obs"], before["obs"])  # unchanged


@pytest.mark.parametrize("value", ["'false'", "2", "'yes'"])
def test_a_flag_of_an_agent_must_be_a_boolean(value, tmp_path, tiny_cfg):
    with pytest.raises(
        ConfigError, match=r"invalid agent.user_features=.*\(allowed: true or false\)"
    ):
        run(tiny_cfg("agent=linucb", f"agent.user_features={value}"), run_dir=tmp_path)
    assert not (tmp_path / "metrics.csv").exists()
    with pytest.raises(ConfigError, match=r"invalid agent.inner.user_features="):
        run(tiny_cfg("agent=frozen", f"agent.inner.user_features={value}"), run_dir=tmp_path)
