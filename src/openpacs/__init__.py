"""openpacs: an open-source medical imaging archive."""

__version__ = "0.1.0"
