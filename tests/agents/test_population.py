"""Population training at the agent level: which configurations may share a population, members
that cannot join, and each member's trajectory against the separate agent with its config.

Tolerance: the batched kernels sum in another order than a separate agent's, so losses agree to
float32 rounding (``RTOL``) while every action of these short runs is the same.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from recording import Recorder, make_env

from agents.dqn import DQNAgent
from agents.population import Population, PopulationError, group_configs, learn_together
from agents.population.grouping import population_key
from agents.pqn import PQNAgent

RTOL = 1e-4
DQN = {"_target_": "agents.dqn.DQNAgent", "network": "candidate", "hidden_sizes": [64, 64],
       "dueling": True, "double": True, "loss": "mse", "batch_size": 64, "device": "cpu",
       "torch_threads": 1, "gamma": 0.99, "lr": 1e-3, "seed": 0}  # fmt: skip
ENV = {"id": "recsim_env/LongTerm-v0", "num_envs": 16, "kwargs": {"num_candidates": None}}


def test_grouping_stacks_only_what_differs_in_seed_and_continuous_hyperparameters():
    pqn = {**DQN, "_target_": "agents.pqn.PQNAgent", "layer_norm": True, "rollout_steps": 16,
           "num_epochs": 2, "num_minibatches": 32, "minibatch_size": 256}  # fmt: skip
    configs = [
        (DQN, ENV),
        ({**DQN, "gamma": 0.9, "lr": 1e-4, "seed": 3, "tau": 1.0, "epsilon_end": 0.1}, ENV),
        ({**DQN, "_target_": "agents.dqn.dqn.DQNAgent", "seed": 1}, ENV),  # the same class
        ({**DQN, "hidden_sizes": [32, 32]}, ENV),  # another shape
        ({**DQN, "dueling": False}, ENV),
        ({**DQN, "loss": "huber"}, ENV),
        (DQN, {**ENV, "num_envs": 8}),  # another env structure
        (DQN, {**ENV, "id": "recsim_env/DriftingUsers-v0"}),
        (DQN, {**ENV, "kwargs": {"num_candidates": 10}}),
        (pqn, ENV),  # another agent class
        ({**pqn, "td_lambda": 0.3, "seed": 5}, ENV),
        ({**DQN, "_target_": "agents.sb3.SB3DQN"}, ENV),  # not ours: alone
        ({**DQN, "_target_": "agents.sb3.SB3DQN"}, ENV),
        ({**DQN, "cuda_graphs": True}, ENV),
    ]
    assert group_configs(configs) == [
        [0, 1, 2], [3], [4], [5], [6], [7], [8], [9, 10], [11], [12], [13]
    ]  # fmt: skip
    assert population_key(*configs[11]) is None and population_key(*configs[13]) is None


def test_members_of_another_shape_or_class_cannot_join():
    population = Population()
    population.attach(population.join(), DQNAgent(make_env(), seed=0, learning_starts=8))
    with pytest.raises(PopulationError, match="structure differs"):
        population.attach(population.join(), DQNAgent(make_env(), seed=1, hidden_sizes=[32]))
    with pytest.raises(PopulationError, match="structure differs"):
        population.attach(population.join(), PQNAgent(make_env(), seed=1))
    with pytest.raises(PopulationError, match="not int"):
        population.attach(population.join(), 3)


def _separate_and_together(build, configs, steps):
    alone = []
    for cfg in configs:
        recorder = Recorder()
        build(cfg).learn(steps, recorder)
        alone.append(recorder)
    members = [build(cfg) for cfg in configs]
    recorders = [Recorder() for _ in configs]
    assert learn_together(members, steps, recorders) == [None] * len(configs)
    return alone, recorders, members


def _assert_same_trajectories(alone, together):
    for a, b in zip(alone, together, strict=True):
        assert len(a.transitions) == len(b.transitions)
        for ta, tb in zip(a.transitions, b.transitions, strict=True):
            np.testing.assert_array_equal(ta.actions, tb.actions)
            np.testing.assert_array_equal(ta.rewards, tb.rewards)
        assert len(a.losses) > 5
        np.testing.assert_allclose(a.losses, b.losses, rtol=RTOL)


def test_dqn_members_act_and_learn_as_their_separate_agents():
    configs = [
        {"seed": 0, "gamma": 0.9, "learning_starts": 32},
        {"seed": 1, "lr": 3e-4, "tau": 1.0, "target_update_interval": 16, "learning_starts": 32},
        {"seed": 2, "exploration_fraction": 0.5, "learning_starts": 64, "max_grad_norm": None,
         "n_step": 3},
    ]  # fmt: skip

    def build(cfg):
        return DQNAgent(make_env(), batch_size=16, total_steps=400, **cfg)

    alone, together, members = _separate_and_together(build, configs, 400)
    _assert_same_trajectories(alone, together)
    # a member's checkpoint holds its own weights (compact copies of its row of the stack)
    state = members[1].state_dict()
    weight = state["q_net"]["item_in.weight"]
    assert weight.untyped_storage().nbytes() == weight.nbytes
    torch.testing.assert_close(weight, members[1].q_net.item_in.weight.detach())
    assert set(state["optimizer"]["state"]) == set(range(len(list(members[1].q_net.parameters()))))


def test_pqn_members_act_and_learn_as_their_separate_agents():
    configs = [
        {"seed": 0, "gamma": 0.9},
        {"seed": 1, "lr": 3e-4, "td_lambda": 0.3},
        {"seed": 2, "exploration_fraction": 0.5, "lr_schedule": "linear", "lr_end": 1e-5},
    ]

    def build(cfg):
        return PQNAgent(make_env(), rollout_steps=4, minibatch_size=4, total_steps=400, **cfg)

    alone, together, _ = _separate_and_together(build, configs, 400)
    _assert_same_trajectories(alone, together)
