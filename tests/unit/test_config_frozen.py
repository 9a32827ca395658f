"""The config model's `@frozen` classes behave like the frozen slotted dataclasses they replace."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from hacluster.config import model
from hacluster.config.frozen import frozen

CLASSES = [cls for cls in vars(model).values()
           if isinstance(cls, type) and dataclasses.is_dataclass(cls)
           and cls.__module__ == model.__name__]


def twin(cls: type) -> type:
    """The `@dataclass(frozen=True, slots=True)` class with `cls`'s fields."""
    specs = []
    for f in dataclasses.fields(cls):
        options: dict[str, Any] = {"init": f.init, "repr": f.repr, "hash": f.hash,
                                   "compare": f.compare, "metadata": f.metadata,
                                   "kw_only": f.kw_only}
        if f.default is not dataclasses.MISSING:
            options["default"] = f.default
        if f.default_factory is not dataclasses.MISSING:
            options["default_factory"] = f.default_factory
        specs.append((f.name, f.type, dataclasses.field(**options)))
    return dataclasses.make_dataclass(cls.__name__, specs, frozen=True, slots=True)


def arguments(cls: type, tag: str = "") -> tuple[list[Any], dict[str, Any]]:
    """Values for every field without a default (positional ones by position)."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            value = f"{f.name}{tag}"
            (kwargs.__setitem__(f.name, value) if f.kw_only else args.append(value))
    return args, kwargs


def outcome(how: Callable[[Any], Any], value: Any) -> tuple[str, Any]:
    """Whether `how(value)` gives back an equal value, or the exception it raises."""
    try:
        return "returned", how(value) == value
    except Exception as exc:
        return "raised", type(exc)


def test_the_model_is_made_of_frozen_classes() -> None:
    assert len(CLASSES) == 39
    assert model.Config in CLASSES and model.TcpCheck in CLASSES


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_a_model_class_behaves_like_its_dataclass(cls: type) -> None:
    before = twin(cls)
    args, kwargs = arguments(cls)
    value, other = cls(*args, **kwargs), before(*args, **kwargs)
    assert str(inspect.signature(cls)) == str(inspect.signature(before))
    assert repr(value) == repr(other)
    assert cls.__match_args__ == before.__match_args__  # type: ignore[attr-defined]
    assert value == cls(*args, **kwargs) and hash(value) == hash(cls(*args, **kwargs))
    assert value != other  # another class, as two dataclasses never compare equal
    # The same outcomes (a Config's mapping proxies can be neither deep-copied nor pickled).
    for how in (copy.copy, copy.deepcopy, dataclasses.replace):
        assert outcome(how, value) == outcome(how, other)
    assert outcome(lambda v: pickle.loads(pickle.dumps(v)), value)[0] == outcome(
        copy.deepcopy, other)[0]
    try:
        plain = dataclasses.asdict(value)
    except TypeError:
        with pytest.raises(TypeError):
            dataclasses.asdict(other)
    else:
        assert plain == dataclasses.asdict(other)
    assert not hasattr(value, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, "other", 1)  # noqa: B010
    for f in dataclasses.fields(cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, f.name, None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(value, f.name)
    positional = [f for f in dataclasses.fields(cls) if f.init and not f.kw_only]
    with pytest.raises(TypeError):
        cls(*[None] * (len(positional) + 1), **kwargs)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_each_field_takes_part_in_equality_and_hashing_as_in_the_dataclass(cls: type) -> None:
    before = twin(cls)
    args, kwargs = arguments(cls)
    value, other = cls(*args, **kwargs), before(*args, **kwargs)
    for f in dataclasses.fields(cls):
        changed = dataclasses.replace(value, **{f.name: ("changed",)})
        changed_twin = dataclasses.replace(other, **{f.name: ("changed",)})
        assert getattr(changed, f.name) == ("changed",)
        assert (changed == value) == (changed_twin == other)
        assert (hash(changed) == hash(value)) == (hash(changed_twin) == hash(other))


def test_defaults_and_factories_are_the_dataclass_ones() -> None:
    a, b = model.Config(), model.Config()
    assert a.global_defs == model.GlobalDefs() and a.vrrp_instances == {}
    assert a.vrrp_instances is not b.vrrp_instances  # a factory's value each time
    assert hash(a) == hash(dataclasses.replace(a, vrrp_scripts=model.frozen_map({"x": 1})))
    assert model.TcpCheck(connect_timeout=2).connect_timeout == 2
    with pytest.raises(TypeError):
        model.TcpCheck(2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        model.MiscCheck()  # type: ignore[call-arg]
    match model.TrackScript("chk", -10):
        case model.TrackScript(name, weight=w):
            assert (name, w) == ("chk", -10)


def test_the_class_keeps_its_own_methods_and_class_variables() -> None:
    @frozen
    class Own:
        KIND: ClassVar[str] = "own"
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

    assert repr(Own("a")) == "<a>" and Own.KIND == "own"
    assert [f.name for f in dataclasses.fields(Own)] == ["name"]


def test_what_the_dataclass_refuses_is_refused() -> None:
    with pytest.raises(TypeError, match="follows default"):
        @frozen
        class Order:
            a: int = 1
            b: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="__setattr__"):
        @frozen
        class Assigns:
            a: int

            def __setattr__(self, name: str, value: object) -> None: ...


def test_a_constructor_is_compiled_when_first_used() -> None:
    @frozen
    class Lazy:
        a: int
        b: tuple[int, ...] = dataclasses.field(default_factory=tuple)

    first = Lazy.__init__
    assert Lazy(1) == Lazy(a=1, b=())
    assert Lazy.__init__ is not first and Lazy.__init__.__qualname__.endswith("Lazy.__init__")
    assert list(inspect.signature(Lazy).parameters) == ["a", "b"]
