"""User catalog files: a new fabric entry inherits its kind's facts (never permissive ones),
numbers are taken as written, merged prices are reported at the user's index, dates may be
unquoted, a directory is not a catalog file."""
from __future__ import annotations

import pytest

from dynamo_iac import patterns
from dynamo_iac.errors import ConfigError
from dynamo_iac.hardware import fabric
from dynamo_iac.hardware.catalog import load
from dynamo_iac.hardware.model import fabric_defaults
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.plan import plan

SRC = "source: {url: 'https://example.com', date: 2026-01-01}"       # an unquoted YAML date


def _entry(name: str, fabric_yaml: str, **kw: str) -> str:
    fields = {"cloud": "aws", "name": name, "gpu_model": "H100", "gpus": "8", "gpu_memory_gb": "80",
              "vcpus": "192", "memory_gib": "2048", **kw}
    return "{" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + f", fabric: {fabric_yaml}, {SRC}}}"


def _load(tmp_path, *entries: str):
    f = tmp_path / "cat.yaml"
    f.write_text("instances:\n" + "".join(f"  - {e}\n" for e in entries))
    return load([f]), str(f)


def _problems(tmp_path, *entries: str):
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, *entries)
    return [(p.path, p.message) for p in e.value.problems]


def test_a_new_efa_entry_gets_efa_rules_not_permissive_defaults(tmp_path):
    cat, _ = _load(tmp_path, _entry("my-efa", "{kind: efa, devices: 8}"))
    it = cat.get("my-efa")
    efa = fabric_defaults()["efa"]
    assert (it.fabric.same_node_kv_transfer, it.fabric.domain) == (False, "az") == \
        (efa["same_node_kv_transfer"], efa["domain"])
    assert it.fabric.resource == "vpc.amazonaws.com/efa" and it.fabric.source is not None      # sourced
    assert it.source.date == "2026-01-01"
    # prefill and decode get separate nodes (EAGAIN between pods of one EFA node)
    c = plan(patterns.disaggregated("d", "m/x", tp=4),
             [GpuPool(name="p", instance_type="my-efa", max_nodes=4, zones=["us-east-1a"])], catalog=cat)
    assert c.nodes_per_pool() == {"p": 2}
    assert fabric.pod_request(it, 4, "prefill") == 4                # its GPU share of 8 devices


@pytest.mark.parametrize("kind,same,dom", [("infiniband", True, "pool"), ("roce", None, "network"),
                                           ("gpudirect-tcpx", None, "network"), ("none", True, "none")])
def test_every_kind_has_its_defaults(tmp_path, kind, same, dom):
    cat, _ = _load(tmp_path, _entry("x", f"{{kind: {kind}, devices: 4, networks: 4}}"))
    f = cat.get("x").fabric
    assert (f.same_node_kv_transfer, f.domain) == (same, dom)
    assert fabric.kv_same_node(cat.get("x")) is bool(same)          # unknown reads as no


def test_a_given_field_wins_and_a_new_kind_drops_the_old_kinds_facts(tmp_path):
    cat, _ = _load(tmp_path, _entry("x", "{kind: efa, devices: 8, same_node_kv_transfer: true}"),
                   "{name: g6e.12xlarge, fabric: {kind: efa, devices: 1}}")
    assert cat.get("x").fabric.same_node_kv_transfer is True
    g6 = cat.get("g6e.12xlarge").fabric                     # was kind none (same-node true, no domain)
    assert (g6.kind, g6.devices, g6.same_node_kv_transfer, g6.domain) == ("efa", 1, False, "az")


def test_merged_price_errors_name_the_users_index(tmp_path):
    bad = "{name: p5.48xlarge, prices: [{option: spot, region: eu-west-1, usd_per_hour: -1, " + SRC + "}]}"
    probs = _problems(tmp_path, bad)
    assert [p for p, _ in probs] == [str(tmp_path / "cat.yaml") + ": instances[0].prices[0].usd_per_hour"]


@pytest.mark.parametrize("field,value,words", [
    ("usd_per_hour", "true", "valid number"), ("usd_per_hour", ".inf", "finite number"),
    ("gpu_memory_gb", ".inf", "finite number"), ("gpu_memory_gb", "true", "valid number"),
    ("gpus", "'8'", "valid integer"), ("gpus", "true", "valid integer"), ("vcpus", "8.5", "valid integer"),
])
def test_numbers_are_taken_as_written(tmp_path, field, value, words):
    if field == "usd_per_hour":
        entry = ("{name: p5.48xlarge, prices: [{option: on-demand, region: us-east-1, usd_per_hour: "
                 + value + ", " + SRC + "}]}")
        path = ": instances[0].prices[0].usd_per_hour"
    else:
        entry = _entry("x", "{kind: none}", **{field: value})
        path = f": instances[0].{field}"
    probs = _problems(tmp_path, entry)
    assert any(p.endswith(path) and words in m for p, m in probs), probs


def test_a_directory_is_not_a_catalog_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        load([tmp_path])
    assert "is a directory" in e.value.problems[0].message
    with pytest.raises(ConfigError) as e:
        load([tmp_path / "missing.yaml"])
    assert "does not exist" in e.value.problems[0].message


def test_fabric_defaults_are_the_package_catalogs(tmp_path):
    f = tmp_path / "cat.yaml"
    f.write_text("fabric_defaults: {efa: {same_node_kv_transfer: true}}\n")
    with pytest.raises(ConfigError) as e:
        load([f])
    assert "package catalog" in e.value.problems[0].message
    assert all(isinstance(row.get("source"), dict) for kind, row in fabric_defaults().items() if kind != "none")
