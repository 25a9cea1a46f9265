"""Frozen records that pydantic validates on demand, without importing pydantic at import time.

The workload and hardware-profile types are stdlib frozen dataclasses: a command whose inputs come from the
parse cache computes on them without importing pydantic (about 150 ms, three times the interpreter's own
start-up; issue 13). When a file is parsed, or a record is built from data (:func:`validated`), pydantic
validates the same dataclass: it reads each field's annotation, with the constraints of :class:`Check`
(metadata that pydantic asks for its schema), forbids unknown keys (``__pydantic_config__``) and runs
``__post_init__``, where each record keeps its cross-field checks. Constructing a record directly (trusted
code with known-good values) runs only ``__post_init__``.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from enum import Enum
from typing import Annotated, Any, TypeVar

R = TypeVar("R")

# pydantic's config for every record: unknown keys are errors (a typo never silently keeps a default).
CONFIG = {"extra": "forbid"}
_MISSING = dataclasses.MISSING


class Record:
    """Base of every record class, declared ``@record``: one generic ``__init__`` (defaults, default
    factories, then ``__post_init__``), value equality and hash (fields with ``compare``), a repr (fields
    with ``repr``), and immutability: what ``@dataclass(frozen=True)`` gives, except that the dataclass
    decorator then generates no code. It compiles six functions per class with ``exec``, which for the ~35
    classes an estimate imports was most of e2sim's own start-up time."""

    __slots__ = ()
    __pydantic_config__ = CONFIG

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes {len(fields)} arguments but {len(args)} were given")
        values = dict(zip(fields, args))
        for k, v in kwargs.items():
            if k not in fields:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {k!r}")
            if k in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {k!r}")
            values[k] = v
        for name, f in fields.items():
            v = values[name] if name in values else _default(f)
            if v is _MISSING:
                raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
            object.__setattr__(self, name, v)
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def _values(self) -> tuple:
        fields = self.__dataclass_fields__.values()  # type: ignore[attr-defined]
        return tuple(getattr(self, f.name) for f in fields if f.compare)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = self.__dataclass_fields__.values()  # type: ignore[attr-defined]
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields if f.repr)
        return f"{type(self).__name__}({args})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _default(f: dataclasses.Field) -> Any:
    """A field's default value (a new one from its factory), or MISSING."""
    return f.default_factory() if f.default_factory is not _MISSING else f.default


def record(cls: type[R]) -> type[R]:
    """Declare a record: a dataclass (fields, defaults, ``dataclasses.replace``/``asdict``, and what pydantic
    validates) whose methods come from :class:`Record`."""
    return dataclasses.dataclass(init=False, repr=False, eq=False)(cls)


class Check:
    """Constraints on one field, in pydantic-core's schema keywords (``strict``, ``ge``, ``le``, ``gt``,
    ``lt``, ``min_length``, ``max_length``, ``allow_inf_nan``), and an optional ``before`` function applied
    to the raw input first. Plain data until pydantic builds a validator."""

    __slots__ = ("before", "constraints")

    def __init__(self, before=None, **constraints: Any):
        self.before = before
        self.constraints = constraints

    def __repr__(self) -> str:
        return f"Check({self.constraints})"

    def __get_pydantic_core_schema__(self, source, handler):
        from pydantic_core import core_schema

        schema = handler(source)
        inner = schema
        while inner.get("type") in ("function-before", "function-after", "function-wrap"):
            inner = inner["schema"]  # the constraints bound the value, not a wrapper (e.g. Real's before)
        inner.update(self.constraints)
        if self.before is not None:
            schema = core_schema.no_info_before_validator_function(self.before, schema)
        return schema


# A decimal number in YAML 1.2 notation. PyYAML (YAML 1.1) reads `3.2e9` and `1e-4` as strings (its floats
# need a dot and a signed exponent), so those strings are numbers; "inf", "0x10", "1_000", " 2" are not.
_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _yaml12_float(v: Any) -> Any:
    return float(v) if isinstance(v, str) and _DECIMAL.fullmatch(v) else v


# Strict scalar types for every config model: YAML's `true` or "10" is not silently an int, a string is not
# a number (but for the exponent notation above), and a real number is finite (.inf / .nan are refused).
Int = Annotated[int, Check(strict=True)]
Real = Annotated[float, Check(_yaml12_float, strict=True, allow_inf_nan=False)]


@functools.cache
def _adapter(cls):
    from pydantic import TypeAdapter

    return TypeAdapter(cls)


def validated(cls: type[R], data: Any) -> R:
    """``data`` (a mapping, or a record) validated as a ``cls`` record; raises pydantic's ValidationError."""
    return _adapter(cls).validate_python(data)


def to_plain(x: Any, exclude_defaults: bool = False) -> Any:
    """A record as plain JSON-able values (dicts, lists, numbers, strings), field by field; with
    ``exclude_defaults``, fields equal to their default are left out."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        out = {}
        for f in dataclasses.fields(x):
            v = getattr(x, f.name)
            if exclude_defaults and (d := _default(f)) is not _MISSING and v == d:
                continue
            out[f.name] = to_plain(v, exclude_defaults)
        return out
    if hasattr(type(x), "model_fields"):  # a pydantic model (stats, run configs) holding records
        return {k: to_plain(getattr(x, k), exclude_defaults) for k in type(x).model_fields}
    if isinstance(x, (list, tuple)):
        return [to_plain(v, exclude_defaults) for v in x]
    if isinstance(x, dict):
        return {str(k): to_plain(v, exclude_defaults) for k, v in x.items()}
    return x.value if isinstance(x, Enum) else x
