"""Configuration: the frozen model, the YAML loader with file:line errors, and helpers."""

from hacluster.config.errors import ConfigError, Problem
from hacluster.config.model import Config

__all__ = ["Config", "ConfigError", "Problem"]
