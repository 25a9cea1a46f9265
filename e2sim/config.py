"""Strict YAML -> pydantic loading shared by workloads, hardware profiles and stats files (pydantic is
imported when something is validated, not at import: see e2sim.records).

Errors name the file and the key path (``layers.3.out_channels``) so the CLI can print one line.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import E2simError
from .records import Int, Real, validated  # noqa: F401 - Int, Real: the strict scalars of every model

if TYPE_CHECKING:
    from pydantic import ValidationError

M = TypeVar("M")


@functools.cache
def _loader():
    """SafeLoader (libyaml's when PyYAML has it: about 10x faster) that rejects duplicate mapping keys instead
    of silently keeping the last one. Built on first use: a run whose inputs come from the parse cache never
    imports yaml."""
    import yaml

    class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    def construct_mapping(loader, node, deep: bool = False) -> dict:
        seen: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise E2simError(f"a {type(key).__name__} used as a mapping key at line "
                                 f"{key_node.start_mark.line + 1}") from None
            if key in seen:
                raise E2simError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
            seen[key] = loader.construct_object(value_node, deep=deep)
        return seen

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return UniqueKeyLoader


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's contents; E2simError naming the file if it cannot be read or decoded."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except OSError as exc:
        raise E2simError(f"{p}: cannot read file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise E2simError(f"{p}: not a UTF-8 text file") from None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file strictly (safe types only, no duplicate keys)."""
    import yaml

    p = Path(path)
    text = read_text(p)
    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 - SafeLoader subclass
    except E2simError as exc:
        raise E2simError(f"{p}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise E2simError(f"{p}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None


# pydantic's error types of a missing key and of an unknown key, for a model and for a record.
_MISSING_KEY = ("missing", "missing_argument")
_UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")


def _input_loc(err: dict, data: Any) -> list:
    """The part of a pydantic error's location that names the input: union members ('str', 'Dataset') and
    validator tags are dropped, keeping the keys and indexes the input has (and a missing key's name)."""
    loc, missing = tuple(err["loc"]), err["type"] in _MISSING_KEY
    out, node = [], data
    for i, seg in enumerate(loc):
        if isinstance(node, dict) and seg in node:
            out.append(seg)
            node = node[seg]
        elif isinstance(node, (list, tuple)) and isinstance(seg, int) and 0 <= seg < len(node):
            out.append(seg)
            node = node[seg]
        elif missing and i == len(loc) - 1:
            out.append(seg)
    return out


def format_validation_error(exc: ValidationError, data: Any = None) -> str:
    """The most specific error of a pydantic ValidationError as 'key.path: message' (the input ``data``,
    when given, lets union member names be dropped from the path)."""
    errors = exc.errors()
    # The first error's key; among its errors the deepest (a union reports each member: the one that got
    # furthest names the actual problem, e.g. dataset.classes rather than "dataset is not a string").
    head = errors[0]["loc"][:1]
    err = max((e for e in errors if e["loc"][:1] == head), key=lambda e: len(e["loc"]))
    loc_parts = _input_loc(err, data) if data is not None else list(err["loc"])
    # A key with a control character (a quoted "a\nb" in YAML) is shown escaped: the message stays one line.
    loc = ".".join(str(x) if str(x).isprintable() else repr(x) for x in loc_parts)
    msg = err["msg"]
    if err["type"] in _UNKNOWN_KEY:
        msg = "unknown key"
    elif err["type"] in _MISSING_KEY:
        msg = "missing required key"
    elif err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
    # Other problems: errors elsewhere in the input, not the other members of the same union (those name
    # this key or one of its parents: "dataset is not a string" beside dataset.classes).
    def alternative(e) -> bool:
        if data is None or e["loc"][:1] != head:
            return False
        p = _input_loc(e, data)
        return loc_parts[:len(p)] == p

    more = sum(1 for e in errors if e is not err and not alternative(e))
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    # A model-level check names its fields in its message.
    return f"{loc}: {msg}{suffix}" if loc else f"{msg}{suffix}"


def validate(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` against ``model`` (a pydantic model or a record, e2sim.records); raise E2simError
    naming ``source`` and the key path."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data) if hasattr(model, "model_validate") else validated(model, data)
    except ValidationError as exc:
        raise E2simError(f"{source}: {format_validation_error(exc, data)}") from None


def load_model(model: type[M], path: str | Path) -> M:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise E2simError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return validate(model, data, str(path))


def bundled_or_path(what: str, name_or_path: str | Path, bundled: dict[str, Path]) -> Path:
    """The file of a bundled item (``what`` is "workload", "profile", ...) by name, or an existing path."""
    s = str(name_or_path)
    if s in bundled:
        return bundled[s]
    path = Path(s)
    if not path.exists():
        raise E2simError(f"{what}: {s!r} is neither a bundled {what} ({', '.join(bundled)}) nor an existing file")
    return path
