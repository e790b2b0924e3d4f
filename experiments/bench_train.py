"""``python -m experiments.bench_train``: the training benchmark (:mod:`experiments.bench.training`);
with ``--population``, the batched-launcher sweep benchmark (:mod:`experiments.bench.population_sweep`)."""

import sys

from experiments.bench.training import AGENTS, bench_training, format_table, main

__all__ = ["AGENTS", "bench_training", "format_table", "main"]

if __name__ == "__main__":
    if "--population" in sys.argv[1:]:
        from experiments.bench.population_sweep import main as population_main

        population_main()
    else:
        main()
