"""The e-document interconnection axis."""

__version__ = "0.1.0"
