"""Slotted dataclasses that compile no code when their class is defined (`@slotted`).

A measured start-up cost: `@dataclass(frozen=True, slots=True)` compiles up to six methods
per class (`__init__`, `__repr__`, `__eq__`, `__hash__`, the frozen `__setattr__` and
`__delattr__`) from generated source when the class is defined. For hacluster's config
model (~40 classes, ~340 fields) that was ~30 ms of its ~45 ms import, before `hacluster
run` can fork its VRRP role, and ~10 ms more for the dataclasses the role imports.
`@slotted` lets `dataclasses.dataclass` collect the fields and build the slotted class
(with init, repr and eq off it compiles nothing), then gives the class what the
dataclass would have had:

- `__init__` with the dataclass's signature (positional fields, then keyword-only ones,
  defaults, default factories, `__post_init__`), compiled when the class is first
  instantiated (or by `prepare`): a process compiles the constructors of the classes it
  builds, no other;
- `__eq__` (the same class only) and, when frozen, `__hash__` over the compared (hashed)
  fields through one `operator.attrgetter` (C, as fast as the generated tuples);
  unfrozen, `__hash__` is None, as the dataclass's;
- `__repr__` as the dataclass's, recursion-safe;
- frozen: `__setattr__` / `__delattr__` raising `FrozenInstanceError`, and
  `__getstate__` / `__setstate__` for copy and pickle.

Methods the class defines itself are kept, as the dataclass keeps them. The class stays
a dataclass: `dataclasses.fields`, `replace`, `asdict`, `is_dataclass` and `match` work
as before; only its `__dataclass_params__` tell that dataclass() itself made no init, repr
or eq. Not supported: `InitVar`, order, `unsafe_hash`. tests/unit/test_slotted.py checks
every such class of the config model and of the VRRP role's start path against the
dataclass it would be.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Callable
from dataclasses import MISSING, Field, FrozenInstanceError
from operator import attrgetter
from types import ModuleType
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")


class _Factory:
    """The default of an argument whose field has a default factory (the dataclass's way)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()
_setfield = object.__setattr__
#: The classes @slotted made frozen (their `__dataclass_params__` do not say it).
_FROZEN: set[type] = set()
#: The classes whose constructor is not compiled yet, and their fields.
_PENDING: dict[type, tuple[Field[Any], ...]] = {}


@overload
def slotted(cls: type[T], /) -> type[T]: ...
@overload
def slotted(*, frozen: bool = False, kw_only: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(field_specifiers=(dataclasses.field, Field))
def slotted(cls: type[T] | None = None, /, *, frozen: bool = False,
            kw_only: bool = False) -> Any:
    """`@dataclass(slots=True, frozen=..., kw_only=...)`, compiling nothing at definition."""
    if cls is None:
        return lambda c: _slotted(c, frozen, kw_only)
    return _slotted(cls, frozen, kw_only)


def _slotted(cls: type[T], frozen: bool, kw_only: bool) -> type[T]:
    own = dict(vars(cls))
    for base in cls.__mro__[1:]:
        if "__dataclass_fields__" in vars(base) and frozen != (
                base in _FROZEN or base.__dataclass_params__.frozen):  # type: ignore[attr-defined]
            raise TypeError(f"{cls.__name__}: cannot inherit a "
                            f"{'non-' if frozen else ''}frozen dataclass")
    if frozen:
        for name in ("__setattr__", "__delattr__"):
            if name in own:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    # Field collection, inheritance and the slotted class, as the dataclass does them.
    built: Any = dataclasses.dataclass(cls, init=False, repr=False, eq=False, slots=True,
                                       kw_only=kw_only)
    every = dataclasses.fields(built)
    _check_order(cls, every)
    names = tuple(f.name for f in every)
    compared = tuple(f.name for f in every if f.compare)
    attrs: dict[str, Any] = {
        "__init__": _lazy_init(built, every),
        "__repr__": _repr(tuple(f.name for f in every if f.repr)),
        "__eq__": _eq(_values(compared)),
    }
    if frozen:
        hashed = tuple(f.name for f in every if (f.compare if f.hash is None else f.hash))
        attrs |= {
            "__hash__": _hash(_values(hashed)),
            "__setattr__": _setattr(built, frozenset(names)),
            "__delattr__": _delattr(built, frozenset(names)),
            "__getstate__": _getstate(_values(names)),
            "__setstate__": _setstate(names),
        }
    elif own.get("__hash__") is None:
        built.__hash__ = None  # mutable and compared: unhashable, as the dataclass
    for name, value in attrs.items():
        if name in own and not (name == "__hash__" and own[name] is None):
            continue  # the class's own (`__hash__` is None where the class defines __eq__)
        value.__qualname__ = f"{built.__qualname__}.{name}"
        value.__module__ = built.__module__
        setattr(built, name, value)
    if "__init__" not in own:
        _PENDING[built] = every
    if frozen:
        _FROZEN.add(built)
    result: type[T] = built
    return result


def _check_order(cls: type, every: tuple[Field[Any], ...]) -> None:
    """The dataclass's rule: a positional field without a default follows none with one."""
    seen_default = False
    for f in every:
        if not f.init or f.kw_only:
            continue
        if f.default is not MISSING or f.default_factory is not MISSING:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: non-default argument {f.name!r} follows "
                            "default argument")


def _values(names: tuple[str, ...]) -> Callable[[object], tuple[Any, ...]]:
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return attrgetter(*names)


def _eq(values: Callable[[object], tuple[Any, ...]]) -> Callable[[object, object], Any]:
    def __eq__(self: object, other: object) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented
    return __eq__


def _hash(values: Callable[[object], tuple[Any, ...]]) -> Callable[[object], int]:
    def __hash__(self: object) -> int:
        return hash(values(self))
    return __hash__


def _repr(shown: tuple[str, ...]) -> Callable[[object], str]:
    @reprlib.recursive_repr()
    def __repr__(self: object) -> str:
        inner = ", ".join([f"{name}={getattr(self, name)!r}" for name in shown])
        return f"{self.__class__.__qualname__}({inner})"
    return __repr__


def _setattr(cls: Any, names: frozenset[str]) -> Callable[[object, str, object], None]:
    def __setattr__(self: object, name: str, value: object) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)
    return __setattr__


def _delattr(cls: Any, names: frozenset[str]) -> Callable[[object, str], None]:
    def __delattr__(self: object, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)
    return __delattr__


def _getstate(values: Callable[[object], tuple[Any, ...]]) -> Callable[[object], list[Any]]:
    def __getstate__(self: object) -> list[Any]:
        return list(values(self))
    return __getstate__


def _setstate(names: tuple[str, ...]) -> Callable[[object, list[Any]], None]:
    def __setstate__(self: object, state: list[Any]) -> None:
        for name, value in zip(names, state, strict=True):
            _setfield(self, name, value)
    return __setstate__


def prepare(*targets: type | ModuleType) -> None:
    """Compile now the constructors of these classes, or of the @slotted classes of these
    modules, that are not compiled yet: for a process about to build them on its hot path
    (and waiting meanwhile)."""
    for target in targets:
        if isinstance(target, ModuleType):
            classes = [cls for cls in _PENDING if cls.__module__ == target.__name__]
        else:
            classes = [target]
        for cls in classes:
            every = _PENDING.get(cls)
            if every is not None:
                _install_init(cls, every)


def _lazy_init(cls: Any, every: tuple[Field[Any], ...]) -> Callable[..., None]:
    """An `__init__` that compiles the real one on its first call and hands over to it."""
    def __init__(self: object, *args: Any, **kwargs: Any) -> None:
        current = vars(cls)["__init__"]
        init = _install_init(cls, every) if current is __init__ else current
        init(self, *args, **kwargs)
    return __init__


def _install_init(cls: Any, every: tuple[Field[Any], ...]) -> Callable[..., None]:
    init = _compile_init(cls, every)
    cls.__init__ = init
    _PENDING.pop(cls, None)
    return init


def _compile_init(cls: type, every: tuple[Field[Any], ...]) -> Callable[..., None]:
    """The dataclass's `__init__` for these fields: positional parameters, then keyword-only
    ones; a factory is called when its argument is left out. The defaults are set on the
    function, not written in its source (a fifth less to compile)."""
    this = "__hc_self" if "self" in {f.name for f in every} else "self"
    env: dict[str, Any] = {"__hc_set": _setfield, "__hc_factory": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    defaults: list[Any] = []
    kwdefaults: dict[str, Any] = {}
    body: list[str] = []
    for f in every:
        value = f.name
        default: Any = MISSING
        if f.default_factory is not MISSING:
            env[f"__hc_f_{f.name}"] = f.default_factory
            call = f"__hc_f_{f.name}()"
            if f.init:
                default = _FACTORY
                value = f"{call} if {f.name} is __hc_factory else {f.name}"
            else:
                value = call
        elif f.default is not MISSING:
            default = f.default
            if not f.init:
                env[f"__hc_d_{f.name}"] = f.default
                value = f"__hc_d_{f.name}"
        elif not f.init:
            continue  # set by nobody, as the dataclass leaves it
        if f.init and f.kw_only:
            keyword.append(f.name)
            if default is not MISSING:
                kwdefaults[f.name] = default
        elif f.init:
            positional.append(f.name)
            if default is not MISSING:
                defaults.append(default)
        body.append(f"  __hc_set({this}, {f.name!r}, {value})")
    if hasattr(cls, "__post_init__"):
        body.append(f"  {this}.__post_init__()")
    params = [this, *positional, *(["*", *keyword] if keyword else [])]
    source = f"def __init__({', '.join(params)}):\n" + ("\n".join(body) or "  pass") + "\n"
    exec(compile(source, f"<{cls.__qualname__}.__init__>", "exec"), env)
    init: Callable[..., None] = env["__init__"]
    init.__defaults__ = tuple(defaults) or None
    init.__kwdefaults__ = kwdefaults or None
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = {f.name: f.type for f in every if f.init} | {"return": None}
    return init
