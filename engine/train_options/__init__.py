"""Training options that shape the optimizer step, one idea a module, each called at one point of the loop.

accumulate.py groups batches into optimizer steps, clipping.py caps the gradients' global norm,
warmup.py ramps the learning rate, ema.py averages the weights, early_stop.py ends a run that stopped improving.
"""
