"""``python -m experiments.bench_train``: the training benchmark (:mod:`experiments.bench.training`)."""

from experiments.bench.training import AGENTS, bench_training, format_table, main

__all__ = ["AGENTS", "bench_training", "format_table", "main"]

if __name__ == "__main__":
    main()
