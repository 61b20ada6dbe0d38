"""Data sets, the image pipeline and batch iteration."""
