"""Read and build frozen configuration dataclasses from YAML or JSON, validated once at the edge.

``read_config(cls, path)`` is the one way a config file becomes typed data: it reads the file
(:func:`read_document`: JSON by a ``.json`` suffix, else YAML) and builds ``cls`` from it.
``build(cls, data)`` walks the dataclass's type hints, converts and checks every field and
reports the first problem as a :class:`~swarmsim.errors.ConfigError` carrying the dotted
path of the field (``workload.mmpp.rates``). Supported field types: ``int``, ``float``,
``str``, ``bool``, ``Any``, ``Literal[...]``, ``tuple[T, ...]``, ``list[T]``, ``dict[str, T]``,
nested frozen dataclasses (alone, in lists or ``| None``) and ``X | None``. Dataclasses
validate their own values in ``__post_init__`` with :func:`swarmsim.errors.check`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args, get_origin

import yaml

from .errors import ConfigError

# libyaml's safe loader where PyYAML was built with it (several times faster; the same
# documents), else the pure-Python one
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
_PARAM = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def read_config(
    cls: type[T], path: str | Path | Traversable, source: str | None = None, what: str = "config"
) -> T:
    """The dataclass ``cls`` built from the YAML or JSON file ``path``; every error is one
    ConfigError naming the file (``source``, default the path) and the dotted field."""
    data = read_document(path, source, what)
    try:
        return build(cls, data)
    except ConfigError as err:
        raise err.in_file(source or str(path)) from None


def read_document(
    path: str | Path | Traversable, source: str | None = None, what: str = "config"
) -> Any:
    """The plain data in the YAML or JSON file ``path`` (JSON by a ``.json`` suffix); a missing
    file or a parse error is one ConfigError naming the file (``source``, default the path)."""
    path = Path(path) if isinstance(path, str) else path
    source = source or str(path)
    if not path.is_file():
        raise ConfigError("(file)", str(path), f"an existing {what} file", source)
    text = path.read_text(encoding="utf-8")
    if path.name.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            where = f"{err.msg} at line {err.lineno}, column {err.colno}"
            raise ConfigError("(json)", where, "valid JSON", source) from None
    try:
        return yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as err:
        raise ConfigError("(yaml)", _yaml_problem(err), "valid YAML", source) from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML parse error on one line: the problem and where it is."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return f"{err.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(err).splitlines()[0]


def build(cls: type[T], data: Any, path: str = "") -> T:
    """Convert ``data`` (a mapping) into dataclass ``cls``, raising ConfigError with the path."""
    if not isinstance(data, Mapping):
        raise ConfigError(path or "(top)", data, f"a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            near = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"one of {sorted(fields)}"
            raise ConfigError(_join(path, str(key)), data[key], f"a known field ({hint})")
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = convert(hints[name], data[name], _join(path, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(_join(path, name), None, "a value (the field is required)")
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise err.within(path) if path else err from None


def convert(hint: Any, value: Any, path: str) -> Any:
    """Convert one value to the type ``hint``; raise ConfigError naming ``path``."""
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(hint, value, path)
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(path, value, f"one of {list(get_args(hint))}")
        return value
    if origin in (tuple, list):
        return _convert_sequence(hint, value, path)
    if origin in (dict, Mapping):
        return _convert_dict(hint, value, path)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value, path)
    return _convert_scalar(hint, value, path)


def _convert_union(hint: Any, value: Any, path: str) -> Any:
    args = [a for a in get_args(hint) if a is not type(None)]
    if value is None:
        if type(None) in get_args(hint):
            return None
        raise ConfigError(path, value, "a value")
    if len(args) == 1:
        return convert(args[0], value, path)
    for arg in args:
        try:
            return convert(arg, value, path)
        except ConfigError:
            continue
    raise ConfigError(path, value, " or ".join(getattr(a, "__name__", str(a)) for a in args))


def _convert_sequence(hint: Any, value: Any, path: str) -> tuple[Any, ...] | list[Any]:
    """``tuple[T, ...]`` or ``list[T]`` from a list, each item converted to ``T``."""
    if not isinstance(value, list | tuple):
        raise ConfigError(path, value, "a list")
    (item,) = [a for a in get_args(hint) if a is not Ellipsis]
    items = [convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    return items if get_origin(hint) is list else tuple(items)


def _convert_dict(hint: Any, value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(path, value, "a mapping")
    _, item = get_args(hint)
    return {str(k): convert(item, v, _join(path, str(k))) for k, v in value.items()}


def _convert_scalar(hint: Any, value: Any, path: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, value, "true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, value, "an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, value, "a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(path, value, "a string")
        return value
    if hint is Any:
        return value
    raise TypeError(f"unsupported config field type {hint!r} at {path}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value as YAML (``20`` -> int, ``0.5`` -> float, ``[1, 2]`` -> list)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for ``dotted = "a.b.c"``, creating mappings on the way;
    a numeric key indexes a list (``nodes.0.agents.2.layer``)."""
    keys = dotted.split(".")
    node: Any = data
    for i, key in enumerate(keys):
        where = ".".join(keys[: i + 1])
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(where, key, f"an index below {len(node)} into the list")
            if last:
                node[int(key)] = value
                return
            node = node[int(key)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(".".join(keys[:i]), node, "a mapping or list to set a field inside")
        if last:
            node[key] = value
            return
        if node.get(key) is None:
            node[key] = {}
        node = node[key]


def substitute(data: Any, params: Mapping[str, Any], path: str = "") -> Any:
    """Replace ``${name}`` references to scenario parameters, keeping the value's type."""
    if isinstance(data, dict):
        return {k: substitute(v, params, _join(path, str(k))) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute(v, params, f"{path}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data
    whole = _PARAM.fullmatch(data)
    if whole:
        return _param(params, whole.group(1), path)
    return _PARAM.sub(lambda m: str(_param(params, m.group(1), path)), data)


def _param(params: Mapping[str, Any], name: str, path: str) -> Any:
    if name not in params:
        raise ConfigError(path, f"${{{name}}}", f"a declared parameter ({sorted(params)})")
    return params[name]
