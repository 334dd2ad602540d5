"""What `python -m tnjax.sweep` is made of: points (naming, overrides, their configs),
children (a point's process, its devices, its log, signals passed on) and the status table."""
