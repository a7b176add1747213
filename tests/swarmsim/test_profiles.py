"""Tests for the sourced hardware profiles and their validation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarmsim.errors import ConfigError, UnknownNameError
from swarmsim.profiles import DeviceProfile, LLMPerf, Profiles, load_profiles

DEVICES = {
    "rtx3080",
    "rtx3060",
    "rtx4080-super",
    "grayskull",
    "cpu-desktop",
    "cpu-server",
    "a100-80gb",
    "h100-80gb",
    "l4",
}
FIGURES = (
    "vram_gb",
    "price_per_hour",
    "embed_base_s",
    "embed_per_item_s",
    "scan_ns_per_dim",
    "eval_s",
)


def fig(value: Any, source: str = "test") -> dict[str, Any]:
    return {"value": value, "source": source}


def minimal() -> dict[str, Any]:
    """A small valid profiles document: one model, one device."""
    device = {"kind": "gpu", **{name: fig(1.0) for name in FIGURES}}
    device["llm"] = {"m": {"prefill_tok_s": fig(100), "decode_tok_s": fig(10)}}
    return {
        "defaults": {"load_gbps": fig(3)},
        "devices": {"dev": device},
        "models": {"m": {"params_b": fig(0.5), "vram_gb": fig(0.5), "describes": "tiny"}},
    }


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "hardware.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def profiles() -> Profiles:
    return load_profiles()


def test_packaged_profiles_load_with_all_devices_and_models(profiles: Profiles) -> None:
    assert set(profiles.devices) == DEVICES
    assert set(profiles.models) == {"llm-small", "llm-large", "embedder", "evaluator"}
    assert profiles.load_gbps > 0
    assert load_profiles() is profiles  # cached


def test_every_packaged_figure_has_a_source(profiles: Profiles) -> None:
    assert profiles.sources["load_gbps"]
    for device in profiles.devices.values():
        expected = set(FIGURES) | {
            f"llm.{model}.{key}"
            for model in device.llm
            for key in ("prefill_tok_s", "decode_tok_s")
        }
        assert set(device.sources) == expected, device.name
        assert all(text.strip() for text in device.sources.values())
    for model in profiles.models.values():
        kv = {"kv_bytes_per_token"} if model.kv_bytes_per_token is not None else set()
        assert set(model.sources) == {"params_b", "vram_gb"} | kv


def test_bigger_gpus_decode_faster_where_the_data_says_so(profiles: Profiles) -> None:
    for model in ("llm-small", "llm-large"):
        small = profiles.device("rtx3060").llm[model]
        big = profiles.device("rtx4080-super").llm[model]
        assert big.decode_tok_s > 2 * small.decode_tok_s
        assert big.prefill_tok_s > small.prefill_tok_s
    h100, a100 = profiles.device("h100-80gb"), profiles.device("a100-80gb")
    assert h100.llm["llm-small"].prefill_tok_s > a100.llm["llm-small"].prefill_tok_s
    assert profiles.device("cpu-desktop").llm["llm-small"].decode_tok_s < 20


def test_models_that_do_not_fit_are_absent(profiles: Profiles) -> None:
    assert "llm-large" not in profiles.device("grayskull").llm
    for device in profiles.devices.values():
        for model in device.llm:
            assert profiles.model(model).vram_gb <= device.vram_gb


def test_synth_seconds_is_prefill_plus_decode() -> None:
    device = DeviceProfile(
        name="d",
        kind="gpu",
        vram_gb=1,
        price_per_hour=1,
        embed_base_s=1,
        embed_per_item_s=1,
        scan_ns_per_dim=1,
        eval_s=1,
        llm={"m": LLMPerf(prefill_tok_s=100, decode_tok_s=10)},
        sources={},
    )
    assert device.synth_seconds("m", 200, 50) == pytest.approx(2 + 5)
    assert device.synth_seconds("m", 0, 0) == 0


def test_synth_seconds_names_model_and_device_when_unavailable(profiles: Profiles) -> None:
    with pytest.raises(ValueError, match=r"'llm-large'.*'grayskull'"):
        profiles.device("grayskull").synth_seconds("llm-large", 10, 10)


def test_unknown_device_suggests_the_nearest(profiles: Profiles) -> None:
    with pytest.raises(UnknownNameError, match="rtx3060") as info:
        profiles.device("rtx-3060")
    assert isinstance(info.value, KeyError)


def test_minimal_file_loads(tmp_path: Path) -> None:
    loaded = load_profiles(write(tmp_path, minimal()))
    assert loaded.device("dev").synth_seconds("m", 100, 10) == pytest.approx(2.0)
    assert loaded.device("dev").sources["llm.m.decode_tok_s"] == "test"


def mutated(change: str) -> dict[str, Any]:
    data = copy.deepcopy(minimal())
    device = data["devices"]["dev"]
    if change == "missing source":
        del device["llm"]["m"]["decode_tok_s"]["source"]
    elif change == "empty source":
        device["eval_s"]["source"] = "  "
    elif change == "negative value":
        device["llm"]["m"]["decode_tok_s"]["value"] = -5
    elif change == "text value":
        data["models"]["m"]["params_b"]["value"] = "big"
    elif change == "unknown kind":
        device["kind"] = "tpu"
    elif change == "missing figure":
        del device["scan_ns_per_dim"]
    elif change == "unknown model":
        device["llm"]["other"] = device["llm"]["m"]
    elif change == "too big":
        data["models"]["m"]["vram_gb"]["value"] = 2
    return data


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("missing source", "devices.dev.llm.m.decode_tok_s"),
        ("empty source", "devices.dev.eval_s"),
        ("negative value", "devices.dev.llm.m.decode_tok_s"),
        ("text value", "models.m.params_b"),
        ("unknown kind", "devices.dev.kind"),
        ("missing figure", "devices.dev.scan_ns_per_dim"),
        ("unknown model", "devices.dev.llm.other"),
        ("too big", "devices.dev.llm.m"),
    ],
)
def test_bad_files_name_the_field(tmp_path: Path, change: str, field: str) -> None:
    path = write(tmp_path, mutated(change))
    with pytest.raises(ConfigError) as info:
        load_profiles(path)
    assert info.value.field == field
    assert info.value.source == str(path)


def test_unknown_key_is_reported(tmp_path: Path) -> None:
    data = minimal()
    data["devices"]["dev"]["vram_gbb"] = fig(1)
    with pytest.raises(ConfigError, match=r"devices\.dev\.vram_gbb"):
        load_profiles(write(tmp_path, data))
