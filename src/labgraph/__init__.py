"""labgraph: publish France's network of public innovation labs as linked open data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("labgraph")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
