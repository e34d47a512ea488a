"""Hyena-GLT."""
__version__ = "0.1.0"
