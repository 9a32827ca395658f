"""The codec of the messages between the supervisor and its roles: plain values and config types."""

from __future__ import annotations

import dataclasses
import inspect

from hacluster.config import model
from healthchecks.wire import Codec


def _config_types() -> list[type]:
    return [
        cls for _, cls in inspect.getmembers(model, inspect.isclass)
        if dataclasses.is_dataclass(cls) and cls.__module__ == model.__name__
    ]


#: What crosses between the supervisor and its roles: plain values and config types.
CODEC = Codec(_config_types())
