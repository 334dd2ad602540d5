"""What `python -m tnjax.sweep` is made of: points (naming, overrides, their configs), run
(run_sweep: the points in turn or in parallel), children (a point's process, its devices,
its log, signals passed on) and the status table."""
