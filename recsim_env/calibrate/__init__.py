"""Fitting the simulator to interaction logs (pandas, scikit-learn, scipy: imported lazily, never
by ``import recsim_env``)."""

from recsim_env.calibrate.fit import fit
from recsim_env.calibrate.simulate import clicks_only, simulate_log

__all__ = ["clicks_only", "fit", "simulate_log"]
