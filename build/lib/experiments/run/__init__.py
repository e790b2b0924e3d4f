"""The runner: ``recsim-train``'s config schema, run dir, protocol, evaluation, checkpoints, sinks.

Import from the modules (``experiments.run.job.run``, ``experiments.run.rundir.RunDir``, ...); this
package stays import-light so that the analysis tools can use :mod:`experiments.run.rundir` alone.
"""
