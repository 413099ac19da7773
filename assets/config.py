"""JSON files and dataclass configs: one reader with one-line errors, one (de)serialiser for every config dataclass.

    read_json(path, what, keys=())     -- parse a JSON file realsim reads; InputError (one line) for a missing, unreadable,
                                          corrupt or foreign file, naming the file and what it should have been
    config_to_dict(cfg) / config_from_dict(cls, data)  -- dataclass <-> JSON-ready dict: nested dataclasses recurse,
                                          tuples become lists and back, keys the class does not know are ignored (files
                                          written by older or newer versions still load)
    ConfigDict                         -- mixin giving a config dataclass `to_dict()` and `from_dict(data)` from the above
"""
from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

from .errors import InputError

__all__ = ["read_json", "config_to_dict", "config_from_dict", "ConfigDict"]

T = TypeVar("T")


def read_json(path: str | os.PathLike, what: str, keys: tuple[str, ...] = ()) -> Any:
    """The parsed content of the JSON file `path`, described as `what` in errors (e.g. "camera file").

    With `keys`, the file must hold an object with those keys, else it is reported as not a `what`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path} not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{what} {path} is not valid JSON: {e}") from None
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if keys:
        missing = [k for k in keys if not isinstance(data, dict) or k not in data]
        if missing:
            raise InputError(f"{path} is not a {what} (no {', '.join(repr(k) for k in missing)})")
    return data


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-ready dict (nested dataclasses as dicts, tuples as lists)."""
    return _plain(dataclasses.asdict(cfg))


def _is_tuple_type(tp: Any) -> bool:
    if tp is tuple or typing.get_origin(tp) is tuple:
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType):  # tuple[...] | None
        return any(_is_tuple_type(a) for a in typing.get_args(tp))
    return False


def config_from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """The dataclass `cls` from a dict written by config_to_dict (unknown keys are ignored, missing ones take defaults)."""
    hints = typing.get_type_hints(cls)
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data or not f.init:
            continue
        v, tp = data[f.name], hints.get(f.name)
        if dataclasses.is_dataclass(tp) and isinstance(v, Mapping):
            v = config_from_dict(tp, v)
        elif isinstance(v, list) and _is_tuple_type(tp):
            v = tuple(v)
        kw[f.name] = v
    return cls(**kw)


class ConfigDict:
    """Mixin for config dataclasses: `cfg.to_dict()` and `Cls.from_dict(data)` (see config_to_dict / config_from_dict)."""

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        return config_from_dict(cls, data)
