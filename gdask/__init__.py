"""gdask: gamma-ray astronomy analysis rebuilt for scale on Dask."""

__version__ = "0.1.0"

__all__ = ["__version__"]
