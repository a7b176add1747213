"""Tests for building config dataclasses and reading them from YAML or JSON files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from swarmsim.config import build, read_config, read_document
from swarmsim.errors import ConfigError, check


@dataclass(frozen=True)
class Part:
    name: str
    size: int = 1

    def __post_init__(self) -> None:
        check(self.size >= 1, "size", self.size, ">= 1")


@dataclass(frozen=True)
class Whole:
    kind: Literal["a", "b"] = "a"
    parts: tuple[Part, ...] = ()
    listed: list[Part] = field(default_factory=list)
    spare: Part | None = None


def test_lists_of_dataclasses_optional_nested_and_literals_build() -> None:
    data = {"kind": "b", "parts": [{"name": "x"}], "listed": [{"name": "y", "size": 2}]}
    whole = build(Whole, {**data, "spare": {"name": "z"}})
    assert whole == Whole("b", (Part("x"),), [Part("y", 2)], Part("z"))
    assert build(Whole, {"spare": None}).spare is None


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"kind": "c"}, "kind"),
        ({"listed": [{"name": "y"}, {"name": "z", "size": 0}]}, "listed[1].size"),
        ({"listed": {"name": "y"}}, "listed"),
        ({"spare": {"nam": "z"}}, "spare.nam"),
        ({"parts": [{}]}, "parts[0].name"),
    ],
)
def test_build_errors_name_the_dotted_field(data: dict, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(Whole, data)
    assert info.value.field == where


def test_read_config_reads_yaml_and_json_alike(tmp_path: Path) -> None:
    data = {"kind": "b", "parts": [{"name": "x", "size": 3}]}
    (tmp_path / "w.json").write_text(json.dumps(data))
    (tmp_path / "w.yaml").write_text("kind: b\nparts:\n  - {name: x, size: 3}\n")
    assert read_config(Whole, tmp_path / "w.json") == read_config(Whole, tmp_path / "w.yaml")


def test_read_config_errors_name_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("parts:\n  - {name: x, size: 0}\n")
    with pytest.raises(ConfigError) as info:
        read_config(Whole, path)
    assert (info.value.source, info.value.field, info.value.value) == (
        str(path),
        "parts[0].size",
        0,
    )


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("bad.yaml", "a: [1, 2\nb: 3\n", "(yaml)"),
        ("bad.json", '{"a": 1,}', "(json)"),
    ],
)
def test_parse_errors_are_one_line_naming_the_file(
    tmp_path: Path, name: str, text: str, where: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_document(path)
    assert info.value.field == where and info.value.source == str(path)
    assert "\n" not in str(info.value) and "line " in str(info.value)


def test_missing_file_names_what_was_wanted(tmp_path: Path) -> None:
    path = tmp_path / "none.yaml"
    with pytest.raises(ConfigError, match="an existing training config file") as info:
        read_config(Whole, path, what="training config")
    assert info.value.source == str(path)
