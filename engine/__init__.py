"""ptviz engine: configuration, data, models and the training loop, with no UI dependencies.

Import submodules directly (ptviz.engine.config, ptviz.engine.loop, ptviz.engine.session); this package's import stays
light so the command line answers --help without loading torch.
"""
