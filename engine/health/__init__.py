"""A run's health: per-layer statistics sampled on the device every train.health_interval steps (sampler.py,
activations.py, histograms.py) and the rules of thumb that turn them into notices (advice.py); the loss-spike
guard (spike.py); rolling a live run back to its last good checkpoint (rollback.py); monitor.py ties them to
the loop.
"""
