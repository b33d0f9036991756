"""The CRD schema cache: keyed by content (an edited CRD is parsed afresh), equal to a fresh
parse, and never in the way (a corrupt entry or an unwritable directory just means parsing)."""
from __future__ import annotations

import json

import pytest

from conftest import CRDS, needs_shared
from dynamo_iac.targets.k8s import schema_cache, validate

pytestmark = pytest.mark.conformance

CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  group: example.com
  names: {kind: Widget}
  versions:
    - name: v1
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {size: {type: integer, maximum: %d}}}
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    validate._crd_index.cache_clear()
    yield tmp_path / "xdg" / "dynamo-iac"
    validate._crd_index.cache_clear()


def _counting(calls):
    def extract(data):
        calls.append(data)
        return validate._extract(data, "widget.yaml")
    return extract


def test_second_read_comes_from_the_cache_and_equals_a_fresh_parse(cache):
    data = (CRD % 8).encode()
    calls: list[bytes] = []
    first = schema_cache.cached(data, _counting(calls))
    again = schema_cache.cached(data, _counting(calls))
    assert len(calls) == 1 and again == first == validate._extract(data)
    assert first == [["example.com/v1", "Widget", {"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"size": {"type": "integer", "maximum": 8}}}}}]]
    assert len(list(cache.glob("*.json"))) == 1 and not list(cache.glob(".*.tmp"))


def test_edited_crd_is_parsed_afresh(cache):
    calls: list[bytes] = []
    schema_cache.cached((CRD % 8).encode(), _counting(calls))
    edited = schema_cache.cached((CRD % 16).encode(), _counting(calls))
    assert len(calls) == 2 and edited[0][2]["properties"]["spec"]["properties"]["size"]["maximum"] == 16


def test_corrupt_entry_is_parsed_again_and_replaced(cache):
    data = (CRD % 8).encode()
    schema_cache.cached(data, validate._extract)
    (entry,) = cache.glob("*.json")
    entry.write_text('{"truncated": ')
    calls: list[bytes] = []
    assert schema_cache.cached(data, _counting(calls)) == validate._extract(data) and len(calls) == 1
    assert json.loads(entry.read_text()) == validate._extract(data)


def test_unwritable_cache_dir_only_means_parsing(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    data = (CRD % 8).encode()
    assert schema_cache.cached(data, validate._extract) == validate._extract(data)


def test_value_json_would_change_is_not_stored(cache):
    assert schema_cache.cached(b"x", lambda _: {1: "int key"}) == {1: "int key"}
    assert not cache.exists() or not list(cache.glob("*.json"))


def test_invalid_crd_yaml_is_still_a_clear_error(cache, tmp_path):
    bad = tmp_path / "crds"
    bad.mkdir()
    (bad / "x_widgets.yaml").write_text("spec: [unclosed\n")
    with pytest.raises(validate.ConfigError) as e:
        validate._crd_index(str(bad))
    assert "not valid YAML" in str(e.value) and "x_widgets.yaml" in str(e.value)
    assert not list(cache.glob("*.json"))


@needs_shared
def test_dynamo_crd_index_from_the_cache_equals_the_yaml(cache):
    fresh = validate._crd_index(str(CRDS))
    assert list(cache.glob("*.json"))
    validate._crd_index.cache_clear()
    assert validate._crd_index(str(CRDS)) == fresh
    f = CRDS / "nvidia.com_dynamographdeployments.yaml"
    direct = {(a, k): s for a, k, s in validate._extract(f.read_bytes())}
    assert {key: fresh[key] for key in direct} == direct and ("nvidia.com/v1beta1", "DynamoGraphDeployment") in direct
