"""ptviz engine: configuration, data, models and the training loop, with no UI dependencies.

Import submodules directly (engine.config, engine.loop, engine.session); this package's import stays
light so the command line answers --help without loading torch.
"""
