"""Hyperparameters of the SB3 adapters: declared once, validated with errors that name key, value
and what is allowed, and translated into SB3's constructor arguments.

Also the schedules (learning rate, ε) that can span a horizon of user-steps instead of SB3's
"progress of the current ``learn`` call", so that a run trained in chunks (``learn`` called once per
evaluation period, or resumed from a checkpoint) anneals exactly like one trained in one go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recsim_env.validation import (
    ConfigError,
    check_bool,
    check_choice,
    check_device,
    check_int,
    check_int_list,
    check_real,
    fail,
    is_int,
)

# A check takes the key (for the message) and the value, and returns the normalised value or raises
# :class:`~recsim_env.validation.ConfigError`.
Check = Callable[[str, Any], Any]


@dataclass(frozen=True)
class Param:
    """One hyperparameter: our default, its check, and SB3's default (for the docs)."""

    default: Any
    check: Check
    sb3_default: Any = None
    sb3_name: str | None = None


def plain(value: Any) -> Any:
    """OmegaConf containers (from Hydra) and tuples → plain dicts and lists, recursively."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


def real(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Check:
    """A finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    return lambda key, value: check_real(key, value, lo, hi, lo_open=lo_open)


def integer(lo: int, *, optional: bool = False, also: tuple[int, ...] = ()) -> Check:
    """An integer ``>= lo`` (or one of ``also``; or ``None`` when ``optional``)."""
    return lambda key, value: check_int(key, value, lo, optional=optional, also=also)


def choice(*options: Any) -> Check:
    return lambda key, value: check_choice(key, value, options)


boolean: Check = check_bool
hidden_sizes: Check = check_int_list
device: Check = check_device


def train_freq(key: str, value: Any) -> int | list[Any]:
    value = plain(value)
    if is_int(value) and int(value) >= 1:
        return int(value)
    if (
        isinstance(value, list)
        and len(value) == 2
        and is_int(value[0])
        and int(value[0]) >= 1
        and value[1] in ("step", "episode")
    ):
        return [int(value[0]), value[1]]
    fail(key, value, "an integer >= 1 (vector steps) or [n >= 1, 'step' | 'episode']")


def mapping(key: str, value: Any) -> dict[str, Any]:
    value = plain(value)
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail(key, value, "a mapping of extra SB3 constructor arguments")
    return value


def validate(owner: str, params: Mapping[str, Param], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in, every value checked and normalised.

    Raises :class:`~recsim_env.validation.ConfigError` naming the owner, key, value and what is
    allowed (unknown keys list the known ones).
    """
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise ConfigError(
            f"{owner}: unknown hyperparameter(s) {', '.join(unknown)}; allowed keys: "
            f"{', '.join(sorted(params))} (other SB3 constructor arguments go in `sb3_kwargs`)"
        )
    return {
        key: param.check(f"{owner}.{key}", plain(given.get(key, param.default)))
        for key, param in params.items()
    }


class StepSchedule:
    """Linear from ``start`` to ``end`` over the first ``fraction`` of training, then ``end``.

    Called by SB3 with its ``progress_remaining`` (1 → 0 over the current ``learn`` call). With a
    ``horizon`` (user-steps), progress is instead ``num_timesteps / horizon``: the adapter sets
    ``learn_total`` to the ``num_timesteps`` at which the current ``learn`` call ends (SB3's
    ``_total_timesteps`` under ``reset_num_timesteps=False``), from which
    ``num_timesteps = (1 - progress_remaining) * learn_total``. Picklable (SB3 stores the learning
    rate schedule in its zip).
    """

    def __init__(
        self, start: float, end: float, fraction: float = 1.0, horizon: int | None = None
    ) -> None:
        self.start = float(start)
        self.end = float(end)
        self.fraction = float(fraction)
        self.horizon = horizon
        self.learn_total: int | None = None

    def progress(self, progress_remaining: float) -> float:
        done = 1.0 - float(progress_remaining)
        if self.horizon is not None:
            done = done * float(self.learn_total or 0) / float(self.horizon)
        return done

    def __call__(self, progress_remaining: float) -> float:
        done = self.progress(progress_remaining)
        if self.fraction <= 0.0 or done >= self.fraction:
            return self.end
        return self.start + (self.end - self.start) * max(done, 0.0) / self.fraction

    def __repr__(self) -> str:
        return (
            f"StepSchedule(start={self.start:g}, end={self.end:g}, fraction={self.fraction:g}, "
            f"horizon={self.horizon})"
        )


# --------------------------------------------------------------------------- the adapters' tables
# Our defaults are the values every recorded run used (`agent=sb3_*`); SB3's own default, where it
# differs, is the third field. Read without importing SB3 (agents/catalog.py).
COMMON_PARAMS: dict[str, Param] = {
    "gamma": Param(0.99, real(0.0, 1.0), 0.99),
    "lr_schedule": Param("constant", choice("constant", "linear"), "constant"),
    "schedule_steps": Param(None, integer(1, optional=True)),
    "hidden_sizes": Param([64, 64], hidden_sizes, [64, 64], "policy_kwargs.net_arch"),
    "seed": Param(None, integer(0, optional=True), None),
    "device": Param("cpu", device, "auto"),
    "torch_threads": Param(1, integer(1), None),
    "verbose": Param(0, choice(0, 1, 2), 0),
    "sb3_kwargs": Param({}, mapping),
}

DQN_PARAMS: dict[str, Param] = {
    "lr": Param(1e-3, real(0.0, lo_open=True), 1e-4, "learning_rate"),
    "epsilon_start": Param(1.0, real(0.0, 1.0), 1.0, "exploration_initial_eps"),
    "epsilon_end": Param(0.05, real(0.0, 1.0), 0.05, "exploration_final_eps"),
    "exploration_fraction": Param(0.1, real(0.0, 1.0), 0.1, "exploration_fraction"),
    "batch_size": Param(64, integer(1), 32),
    "buffer_size": Param(100_000, integer(1), 1_000_000),
    "learning_starts": Param(1_000, integer(0), 100),
    "train_freq": Param(1, train_freq, 4),
    "gradient_steps": Param(1, integer(1, also=(-1,)), 1),
    "target_update_interval": Param(1_000, integer(1), 10_000),
    "n_steps": Param(1, integer(1), 1),
    "log_interval": Param(4, integer(1), 4),
    "save_replay_buffer": Param(False, boolean),
}

QRDQN_PARAMS: dict[str, Param] = {
    **DQN_PARAMS,
    "lr": Param(5e-5, real(0.0, lo_open=True), 5e-5, "learning_rate"),
    "epsilon_end": Param(0.01, real(0.0, 1.0), 0.01, "exploration_final_eps"),
    "exploration_fraction": Param(0.1, real(0.0, 1.0), 0.005, "exploration_fraction"),
    "n_quantiles": Param(50, integer(1), 200, "policy_kwargs.n_quantiles"),
}

PPO_PARAMS: dict[str, Param] = {
    "lr": Param(3e-4, real(0.0, lo_open=True), 3e-4, "learning_rate"),
    "n_steps": Param(128, integer(1), 2048),
    "batch_size": Param(256, integer(2), 64),
    "n_epochs": Param(4, integer(1), 10),
    "gae_lambda": Param(0.95, real(0.0, 1.0), 0.95),
    "clip_range": Param(0.2, real(0.0, lo_open=True), 0.2),
    "ent_coef": Param(0.01, real(0.0), 0.0),
    "log_interval": Param(1, integer(1), 1),
    # the policy: SB3's MlpPolicy (one logit per candidate slot; what every recorded run used) or
    # our per-candidate scorer's logits (agents/sb3/actor_critic.py); SB3's PPO loss either way
    "network": Param("mlp", choice("mlp", "candidate"), "mlp", "policy"),
}

A2C_PARAMS: dict[str, Param] = {
    "lr": Param(7e-4, real(0.0, lo_open=True), 7e-4, "learning_rate"),
    "n_steps": Param(5, integer(1), 5),
    "gae_lambda": Param(1.0, real(0.0, 1.0), 1.0),
    "ent_coef": Param(0.01, real(0.0), 0.0),
    "log_interval": Param(100, integer(1), 100),
    # as PPO's: mlp = SB3's MlpPolicy, candidate = agents/sb3/actor_critic.py
    "network": Param("mlp", choice("mlp", "candidate"), "mlp", "policy"),
}

# The Q-network of SB3's DQN and sb3-contrib's QR-DQN: SB3's MlpPolicy over the flat observation
# (the default, what every recorded run used), or our per-candidate scorer
# (agents/qlearning/network.py) as SB3's q_net (QR-DQN: quantile_net, n_quantiles outputs per
# candidate): the same weights score every candidate from its own features and the user's, as our
# DQN and PQN do. SB3's learning (replay, TD or quantile loss, target network, ε-greedy) is
# unchanged either way.
DQN_NETWORK_PARAMS: dict[str, Param] = {
    "network": Param("mlp", choice("mlp", "candidate"), "mlp", "policy"),
    "dueling": Param(False, boolean, False),
}

# every hyperparameter of each adapter (what agents/catalog.py reads)
SB3DQN_PARAMS = {**COMMON_PARAMS, **DQN_PARAMS, **DQN_NETWORK_PARAMS}
SB3QRDQN_PARAMS = {**COMMON_PARAMS, **QRDQN_PARAMS, **DQN_NETWORK_PARAMS}
SB3PPO_PARAMS = {**COMMON_PARAMS, **PPO_PARAMS}
SB3A2C_PARAMS = {**COMMON_PARAMS, **A2C_PARAMS}
