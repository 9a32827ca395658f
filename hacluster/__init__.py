"""hacluster: VRRP, health checks and an IPVS adapter for load-balancer directors."""


def __getattr__(name: str) -> str:
    # `__version__` is read from the installed metadata on first use only: importing
    # importlib.metadata costs tens of milliseconds that `hacluster run` would otherwise
    # spend before its VRRP role starts.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        # pyproject.toml is the one place the version is written; the metadata carries it.
        found = version("hacluster")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found
