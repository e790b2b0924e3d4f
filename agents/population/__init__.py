"""Population training: K configurations of our DQN or PQN trained as one batched computation.

:class:`Population` (members attach, their torch work meets in a rendezvous and runs over stacked
parameters), :func:`group_configs` / :func:`population_key` (which configurations can share a
population). The runner's entry point is :func:`experiments.run.population.run_population`.
"""

from agents.population.grouping import group_configs, population_key
from agents.population.population import Population, PopulationError, learn_together

__all__ = ["Population", "PopulationError", "group_configs", "learn_together", "population_key"]
