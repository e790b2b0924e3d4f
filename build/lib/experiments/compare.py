"""``python -m experiments.compare`` = ``recsim-compare`` (it lives in :mod:`experiments.analysis.compare`)."""

import sys

from experiments.analysis.compare.cli import compare_runs, main

__all__ = ["compare_runs", "main"]

if __name__ == "__main__":
    sys.exit(main())
