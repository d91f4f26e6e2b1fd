"""Network conditions: link arithmetic, validation messages and the YAML presets."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError

import pytest
import yaml
from omegaconf import OmegaConf

from sgprepro.network import NetworkConfig, list_presets, load_preset, network_conf_dir

RESNET50_BYTES = 102_228_128


def test_message_time_is_latency_plus_bits_over_effective_rate() -> None:
    net = NetworkConfig("x", latency_s=1e-3, bandwidth_gbps=10.0, efficiency=0.5)
    assert net.message_time(0) == pytest.approx(1e-3)
    assert net.message_time(1_250_000) == pytest.approx(1e-3 + 1e7 / 5e9)
    assert net.bytes_per_s == pytest.approx(0.625e9)


def test_line_rate_message_time_matches_reference_figure() -> None:
    # Reference Sec. 6: one 102.2 MB message at the 10 GbE line rate takes 0.082 s.
    net = NetworkConfig("x", latency_s=0.0, bandwidth_gbps=10.0)
    assert net.message_time(RESNET50_BYTES) == pytest.approx(0.0818, abs=1e-4)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("latency_s", -0.001),
        ("bandwidth_gbps", 0.0),
        ("bandwidth_gbps", float("inf")),
        ("efficiency", 0.0),
        ("efficiency", 1.5),
        ("jitter_s", -1.0),
        ("straggler_prob", 1.2),
        ("straggler_slowdown", 0.5),
        ("compute_cv", -0.1),
        ("latency_s", float("nan")),
        ("efficiency", "high"),
    ],
)
def test_bad_values_raise_one_line_naming_the_key(key: str, value: object) -> None:
    fields = {"name": "x", "latency_s": 0.0, "bandwidth_gbps": 1.0, key: value}
    with pytest.raises(ValueError, match=rf"^network\.{key}=") as err:
        NetworkConfig(**fields)  # type: ignore[arg-type]
    message = str(err.value)
    assert message.startswith(f"network.{key}=")
    assert "\n" not in message
    assert ";" in message  # constraint; fix


def test_example_message_from_the_brief() -> None:
    with pytest.raises(ValueError, match=re.escape("network.latency_s=-0.001: must be >= 0")):
        NetworkConfig("x", latency_s=-0.001, bandwidth_gbps=10.0)


def test_frozen_and_replace_validates() -> None:
    net = NetworkConfig("x", latency_s=0.0, bandwidth_gbps=10)
    assert isinstance(net.bandwidth_gbps, float)
    with pytest.raises(FrozenInstanceError):
        net.latency_s = 1.0  # type: ignore[misc]
    assert net.replace(efficiency=0.5).efficiency == 0.5
    with pytest.raises(ValueError, match=r"network\.efficiency"):
        net.replace(efficiency=2.0)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="latency"):
        NetworkConfig.from_dict({"name": "x", "latncy_s": 0.0, "bandwidth_gbps": 1.0})


def test_every_shipped_preset_loads() -> None:
    assert {"eth_10g", "ib_100g", "wan", "ideal", "paper_regime"} <= set(list_presets())
    for name in list_presets():
        net = load_preset(name)
        assert net.name == name
        assert net.description


def test_preset_values() -> None:
    eth = load_preset("eth_10g")
    assert eth.bandwidth_gbps == 10.0
    assert load_preset("ib_100g").bandwidth_gbps == 100.0
    ideal = load_preset("ideal")
    assert ideal.latency_s == 0.0
    assert ideal.message_time(RESNET50_BYTES) < 1e-6
    wan = load_preset("wan")
    assert wan.message_time(1) > 100 * eth.message_time(1)


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(ValueError, match="eth_10g"):
        load_preset("eth_1g")


def test_every_preset_number_cites_a_source() -> None:
    for path in sorted(network_conf_dir().glob("*.yaml")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if ":" not in code or not code.split(":", 1)[1].strip():
                continue
            value = yaml.safe_load(code.split(":", 1)[1])
            if isinstance(value, int | float) and not isinstance(value, bool):
                missing = f"{path.name}:{lineno} has a number without a source comment: {line!r}"
                assert "#" in line, missing
                assert len(line.split("#", 1)[1].strip()) > 10, missing


def test_schema_works_as_hydra_structured_config() -> None:
    schema = OmegaConf.structured(NetworkConfig)
    cfg = OmegaConf.merge(schema, OmegaConf.load(network_conf_dir() / "eth_10g.yaml"))
    net = OmegaConf.to_object(cfg)
    assert net == load_preset("eth_10g")
    with pytest.raises(Exception, match="latncy_s"):
        OmegaConf.merge(schema, {"latncy_s": 1.0})


def test_eth_10g_efficiency_is_the_replays_fit() -> None:
    """One fact in one place: the 10 GbE preset's efficiency is the stored 4-node fit, rounded."""
    from sgprepro.regime import paper_calibration

    assert load_preset("eth_10g").efficiency == pytest.approx(
        paper_calibration().efficiency, abs=5e-4
    )
