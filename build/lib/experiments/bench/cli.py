"""``recsim-bench`` / ``make bench``: simulator and training throughput, printed and saved as JSON.

Every target is a ratio measured within one run (same machine, same moment), never a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Nested dicts → ``{"a.b": v}`` rows for the table."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def main(argv: list[str] | None = None) -> int:
    """Console script ``recsim-bench`` (exit status 0; the results are printed and saved)."""
    run_benchmarks(argv)
    return 0


def run_benchmarks(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, run the benchmarks, print the tables, save the JSON; return the results."""
    parser = argparse.ArgumentParser(prog="recsim-bench", description=__doc__)
    parser.add_argument("--out", default="bench_results/bench.json", help="where to save the JSON")
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="minimum timing per simulator case"
    )
    parser.add_argument("--skip-training", action="store_true", help="only the simulator benchmark")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from experiments.bench.simulator import bench_simulator

    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
        "simulator": bench_simulator(min_seconds=args.seconds),
    }
    if not args.skip_training:
        try:
            from experiments.bench.training import bench_training
        except ImportError as err:  # the training benchmark lives with the DQN
            results["training"] = {"skipped": str(err)}
        else:
            results["training"] = bench_training()

    console = Console()
    for section in ("simulator", "training"):
        if section not in results:
            continue
        flat: dict[str, Any] = {}
        _flatten("", results[section], flat)
        table = Table(title=f"recsim-bench: {section}")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for key, value in flat.items():
            if isinstance(value, float):
                shown = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
            else:
                shown = str(value)
            table.add_row(key, shown)
        console.print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"saved {out.resolve()}")
    return results


if __name__ == "__main__":
    main()
