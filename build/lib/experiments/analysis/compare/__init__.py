"""``recsim-compare``: load runs → aggregate over seeds → plots → report (see :mod:`.cli`)."""
