"""``python -m experiments.bench_sim``: the simulator benchmark (:mod:`experiments.bench.simulator`)."""

from experiments.bench.simulator import bench_simulator

__all__ = ["bench_simulator"]

if __name__ == "__main__":
    import json

    print(json.dumps(bench_simulator(), indent=2))
