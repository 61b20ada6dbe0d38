"""The model pane: layer tree with shapes, parameters and FLOPs, freeze keys and a model-spec field."""

from .pane import ModelPane

__all__ = ["ModelPane"]
