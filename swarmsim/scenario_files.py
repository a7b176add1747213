"""Scenario files: the built-in scenarios, reading a scenario by name or path, and overrides.

A scenario is read as written (:func:`raw_scenario`), its ``KEY=VALUE`` overrides and
``${parameter}`` references applied, then built and validated once
(:func:`resolve_scenario`); every error names the file, the dotted field and the value.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import build, parse_value, read_document, set_dotted, substitute
from .errors import ConfigError, UnknownNameError

if TYPE_CHECKING:  # imported where a scenario is built: listing them needs only the YAML
    from .scenario import Scenario

BUILTIN = resources.files("swarmsim") / "scenarios"


def builtin_scenarios() -> dict[str, str]:
    """Built-in scenario names and their one-line descriptions, sorted by name (so a control
    twin ``NAME-control`` follows ``NAME``)."""
    out = {}
    for entry in sorted(BUILTIN.iterdir(), key=lambda p: p.name.removesuffix(".yaml")):
        if entry.name.endswith(".yaml"):
            data = read_document(entry, what="scenario")
            out[entry.name[: -len(".yaml")]] = str(data.get("description", "")).split("\n")[0]
    return dict(sorted(out.items()))  # by name: a twin NAME-control follows NAME


def load_scenario(ref: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Load a built-in scenario by name or a YAML file by path, applying ``KEY=VALUE`` overrides.

    ``KEY`` is a declared parameter (``arrival_rate=0.9``) or any dotted field
    (``workload.rate=20``). Errors name the file, the field and the value.
    """
    path, raw = raw_scenario(ref)
    return resolve_scenario(raw, overrides, path)


def resolve_scenario(raw: dict[str, Any], overrides: Sequence[str], source: str) -> Scenario:
    """A scenario from its YAML mapping as written (see ``raw_scenario``) and overrides;
    errors name ``source``."""
    try:
        return _resolve(raw, overrides)
    except ConfigError as err:
        raise err.in_file(source) from None


def raw_scenario(ref: str | Path) -> tuple[str, dict[str, Any]]:
    """A scenario's source (file or built-in) and its YAML mapping as written, unresolved."""
    path, source = _locate(ref)
    raw = read_document(path, source, "scenario")
    if not isinstance(raw, dict):
        raise ConfigError("(top)", raw, "a mapping of scenario fields", source=source)
    raw.setdefault("name", Path(ref).stem if source.endswith((".yaml", ".yml")) else str(ref))
    return source, raw


def _locate(ref: str | Path) -> tuple[Traversable, str]:
    """The file a scenario reference names and how errors name it: a path, or a built-in."""
    ref_s = str(ref)
    candidate = Path(ref_s)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate, ref_s
    known = builtin_scenarios()
    if ref_s not in known:
        raise UnknownNameError("scenario", ref_s, known)
    return BUILTIN / f"{ref_s}.yaml", f"{ref_s} (built-in)"


def _resolve(raw: dict[str, Any], overrides: Sequence[str]) -> Scenario:
    from .scenario import Scenario

    data = copy.deepcopy(raw)
    params = dict(data.get("parameters") or {})
    for item in overrides:
        key, value = _split_override(item)
        if "." not in key and key not in Scenario.__dataclass_fields__:
            if key not in params:
                near = difflib.get_close_matches(key, params, n=1)
                hint = f"did you mean {near[0]!r}?" if near else f"one of {sorted(params)}"
                raise ConfigError(key, value, f"a declared parameter or a dotted field ({hint})")
            params[key] = _check_param(key, params[key], value)
        else:
            set_dotted(data, key, value)
    data["parameters"] = params
    data = {k: (v if k == "parameters" else substitute(v, params, k)) for k, v in data.items()}
    return build(Scenario, data)


def _check_param(name: str, default: Any, value: Any) -> Any:
    """A parameter override must have the type of the parameter's default."""
    kind = type(default)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok and default is not None:
        raise ConfigError(
            f"parameters.{name}", value, f"{kind.__name__} like the default {default!r}"
        )
    return value


def _split_override(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError("--set", item, "KEY=VALUE")
    return key.strip(), parse_value(value.strip())


def scenario_digest(scenario: Scenario) -> str:
    """A sha256 of what ``scenario`` says: every field that differs from its default, so that
    adding a new field (at a default that keeps old behaviour) leaves old digests valid."""
    text = json.dumps(_canonical(scenario), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        out = {}
        for f in dataclasses.fields(x):
            value = getattr(x, f.name)
            if f.default is not dataclasses.MISSING and value == f.default:
                continue
            factory = f.default_factory
            if factory is not dataclasses.MISSING and value == factory():
                continue
            out[f.name] = _canonical(value)
        return out
    if isinstance(x, dict):
        return {str(k): _canonical(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_canonical(v) for v in x]
    return x
