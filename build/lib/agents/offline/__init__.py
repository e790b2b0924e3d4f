"""Offline pre-training → online fine-tuning.

* :mod:`agents.offline.dataset`: a stochastic behaviour policy (:class:`StochasticPolicy`), the
  logger (:func:`collect_dataset`) and the documented ``.npz`` format (:class:`LoggedDataset`).
* :mod:`agents.offline.ope`: off-policy evaluation (IPS, SNIPS, direct method, doubly robust)
  of a target policy's per-step expected reward, with bootstrap standard errors.
* :mod:`agents.offline.pretrain`: batch (fitted) Q-learning of our DQN on logged data, optionally
  conservative (CQL), and seeding the DQN's replay with the logged transitions.
"""

from agents.offline.dataset import (
    FORMAT_VERSION,
    DatasetFormatError,
    LoggedDataset,
    StochasticPolicy,
    collect_dataset,
    greedy_probs,
    softmax_probs,
)
from agents.offline.ope import (
    OPEEstimate,
    RidgeRewardModel,
    direct_method,
    doubly_robust,
    estimate_all,
    ips,
    logged_context_value,
    online_value,
)
from agents.offline.pretrain import pretrain_dqn, seed_replay
from agents.offline.pretrained_agent import PretrainedDQN

__all__ = [
    "FORMAT_VERSION",
    "DatasetFormatError",
    "LoggedDataset",
    "OPEEstimate",
    "PretrainedDQN",
    "RidgeRewardModel",
    "StochasticPolicy",
    "collect_dataset",
    "direct_method",
    "doubly_robust",
    "estimate_all",
    "greedy_probs",
    "ips",
    "logged_context_value",
    "online_value",
    "pretrain_dqn",
    "seed_replay",
    "softmax_probs",
]
