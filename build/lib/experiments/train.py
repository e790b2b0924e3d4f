"""``python -m experiments.train`` = ``recsim-train`` (the runner lives in :mod:`experiments.run`)."""

from experiments.run.cli import main, route_resume_argv
from experiments.run.job import run

__all__ = ["main", "route_resume_argv", "run"]

if __name__ == "__main__":
    main()
