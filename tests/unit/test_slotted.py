"""`@slotted` classes behave like the slotted dataclasses they replace (config model, VRRP path)."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from hacluster import daemon_options, preflight, reload_plan, single_instance, vrrp_status
from hacluster.config import errors, model
from hacluster.roles.constructors import prepare_vrrp_role
from vrrp import addresses, announce, driver, machine, packet, speaker, transport
from vrrp.slotted import prepare, slotted

MODULES = (model, errors, daemon_options, preflight, reload_plan, single_instance, vrrp_status,
           addresses, announce, driver, machine, packet, speaker, transport)
CLASSES = [cls for module in MODULES for cls in vars(module).values()
           if isinstance(cls, type) and dataclasses.is_dataclass(cls)
           and cls.__module__ == module.__name__]
#: Values that pass a class's own checks (`__post_init__`), where any string would not.
VALID: dict[type, dict[str, Any]] = {
    machine.InstanceParams: {"vrid": 7, "priority": 100, "advert_int": 1.0},
    packet.Advert: {"version": 3, "vrid": 7, "priority": 100, "max_advert_int": 1.0},
}


def is_frozen(cls: type) -> bool:
    return "__setattr__" in vars(cls)


def twin(cls: type) -> type:
    """The `@dataclass(slots=True, frozen=...)` class with `cls`'s fields and methods."""
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
    own = {name: value for name, value in vars(cls).items()
           if name == "__post_init__" or not name.startswith("__")}
    own.pop("__slots__", None)
    return dataclasses.make_dataclass(cls.__name__, specs, frozen=is_frozen(cls), slots=True,
                                      namespace=own)


def arguments(cls: type) -> tuple[list[Any], dict[str, Any]]:
    """Values for every field without a default (positional ones by position)."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    valid = VALID.get(cls, {})
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            value = valid.get(f.name, f"{f.name}-value")
            if f.kw_only:
                kwargs[f.name] = value
            else:
                args.append(value)
    return args, kwargs


def outcome(how: Callable[[Any], Any], value: Any) -> tuple[str, Any]:
    """Whether `how(value)` gives back an equal value, or the exception it raises."""
    try:
        return "returned", how(value) == value
    except Exception as exc:
        return "raised", type(exc)


def test_the_model_and_the_vrrp_start_path_use_slotted_classes() -> None:
    assert sum(cls.__module__ == model.__name__ for cls in CLASSES) == 39
    assert {machine.InstanceParams, machine.Counters, packet.Advert, transport.Peer,
            driver.Member, speaker.InstancePlan} <= set(CLASSES)
    assert all(type(vars(cls)["__eq__"]).__name__ == "function" for cls in CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__qualname__)
def test_a_class_behaves_like_its_dataclass(cls: type) -> None:
    before = twin(cls)
    args, kwargs = arguments(cls)
    value, other = cls(*args, **kwargs), before(*args, **kwargs)
    assert str(inspect.signature(cls)) == str(inspect.signature(before))
    assert repr(value) == repr(other)
    assert cls.__match_args__ == before.__match_args__  # type: ignore[attr-defined]
    assert value == cls(*args, **kwargs)
    assert value != other  # another class, as two dataclasses never compare equal
    if is_frozen(cls):
        assert hash(value) == hash(cls(*args, **kwargs))
    else:
        assert cls.__hash__ is None and before.__hash__ is None
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
    positional = [f for f in dataclasses.fields(cls) if f.init and not f.kw_only]
    with pytest.raises(TypeError):
        cls(*[None] * (len(positional) + 1), **kwargs)


@pytest.mark.parametrize("cls", [c for c in CLASSES if is_frozen(c)],
                         ids=lambda cls: cls.__qualname__)
def test_a_frozen_class_refuses_assignment(cls: type) -> None:
    args, kwargs = arguments(cls)
    value = cls(*args, **kwargs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, "other", 1)  # noqa: B010
    for f in dataclasses.fields(cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, f.name, None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(value, f.name)


@pytest.mark.parametrize("cls", [c for c in CLASSES if c not in VALID],
                         ids=lambda cls: cls.__qualname__)
def test_each_field_takes_part_in_equality_and_hashing_as_in_the_dataclass(cls: type) -> None:
    before = twin(cls)
    args, kwargs = arguments(cls)
    value, other = cls(*args, **kwargs), before(*args, **kwargs)
    for f in dataclasses.fields(cls):
        changed = dataclasses.replace(value, **{f.name: ("changed",)})
        changed_twin = dataclasses.replace(other, **{f.name: ("changed",)})
        assert getattr(changed, f.name) == ("changed",)
        assert (changed == value) == (changed_twin == other)
        if is_frozen(cls):
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


def test_post_init_checks_and_normalises() -> None:
    with pytest.raises(ValueError, match="priority"):
        packet.Advert(3, 7, 300, 1.0)
    assert packet.Advert(2, 7, 100, 1).max_advert_int == 1.0
    assert isinstance(packet.Advert(2, 7, 100, 1).max_advert_int, float)


def test_a_mutable_class_is_assigned_and_unhashable() -> None:
    @slotted
    class Tally:
        seen: int = 0
        names: list[str] = dataclasses.field(default_factory=list)

    tally = Tally()
    tally.seen += 1
    tally.names.append("a")
    assert tally == Tally(1, ["a"]) and Tally().names is not Tally().names
    with pytest.raises(TypeError):
        hash(tally)
    with pytest.raises(AttributeError):
        tally.other = 1  # type: ignore[attr-defined]


def test_the_class_keeps_its_own_methods_and_class_variables() -> None:
    @slotted(frozen=True)
    class Own:
        KIND: ClassVar[str] = "own"
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

    assert repr(Own("a")) == "<a>" and Own.KIND == "own"
    assert [f.name for f in dataclasses.fields(Own)] == ["name"]


def test_what_the_dataclass_refuses_is_refused() -> None:
    with pytest.raises(TypeError, match="follows default"):
        @slotted
        class Order:
            a: int = 1
            b: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="__setattr__"):
        @slotted(frozen=True)
        class Assigns:
            a: int

            def __setattr__(self, name: str, value: object) -> None: ...

    @slotted(frozen=True)
    class Frozen:
        a: int

    with pytest.raises(TypeError, match="frozen"):
        @slotted
        class Thawed(Frozen):  # type: ignore[misc]
            b: int


def test_a_constructor_is_compiled_when_first_used() -> None:
    @slotted(frozen=True)
    class Lazy:
        a: int
        b: tuple[int, ...] = dataclasses.field(default_factory=tuple)

    first = vars(Lazy)["__init__"]
    assert Lazy(1) == Lazy(a=1, b=())
    assert vars(Lazy)["__init__"] is not first
    assert Lazy.__init__.__qualname__.endswith("Lazy.__init__")
    assert list(inspect.signature(Lazy).parameters) == ["a", "b"]


def test_prepare_compiles_constructors_ahead_of_use() -> None:
    @slotted
    class Early:
        a: int = 0

    stub = vars(Early)["__init__"]
    prepare(Early)
    compiled = vars(Early)["__init__"]
    assert compiled is not stub and Early(2).a == 2
    prepare(Early)  # once only
    assert vars(Early)["__init__"] is compiled


def test_the_vrrp_role_prepares_what_its_start_path_builds() -> None:
    prepare_vrrp_role()
    for cls in (model.Config, model.GlobalDefs, model.VrrpInstance, driver.Member,
                machine.InstanceParams, packet.Advert, speaker.InstancePlan):
        assert "args" not in inspect.signature(vars(cls)["__init__"]).parameters
