"""Subcommands of the hacluster command line, one module each."""
