"""``python -m experiments.tune`` = ``recsim-tune``."""

import sys

from experiments.tune.cli import main

sys.exit(main())
