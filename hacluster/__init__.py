"""hacluster: VRRP, health checks and an IPVS adapter for load-balancer directors."""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml is the one place the version is written; the installed metadata carries it.
    __version__ = version("hacluster")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
