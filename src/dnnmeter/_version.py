"""dnnmeter's version, in one place: pyproject.toml reads it, and it imports nothing."""

__version__ = "0.1.0"
