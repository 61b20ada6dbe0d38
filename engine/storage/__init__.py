"""A run's storage: its folder and lock, logs, checkpoints, and the listing of runs; no training here."""
