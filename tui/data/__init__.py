"""The data pane: see the data before and after the pipeline, its statistics, and what an evaluation got wrong."""

from .pane import DataPane

__all__ = ["DataPane"]
