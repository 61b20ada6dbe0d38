"""ptviz: a terminal cockpit for training PyTorch models.

Everything installs under this one name, so a project's own `engine.py` or `tui/` never shadows it:
`ptviz.engine` is the headless core (configuration, data, models, the training loop), `ptviz.tui` the
Textual cockpit, headless runner and command line. This package's import stays light (no torch), so the
command line answers --help at once.
"""

__version__ = "0.1.0"
