"""Catalog files: every bad override is an error naming the file and YAML path; overrides
deep-merge onto the entry they name; figures carry a source; the CLI filter is exact."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dynamo_iac.errors import ConfigError
from dynamo_iac.hardware.catalog import load

ENTRY = ("{cloud: aws, name: x1, gpu_model: H100, gpus: 8, gpu_memory_gb: 80, vcpus: 8, memory_gib: 64, "
         "source: {url: 'https://example.com', date: '2026-01-01'}")


def _load(tmp_path, text):
    f = tmp_path / "cat.yaml"
    f.write_text(text)
    return load([f]), str(f)


def _problems(tmp_path, text):
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, text)
    return e.value.problems


@pytest.mark.parametrize("text,path,words", [
    ("- a\n- b\n", ": (top level)", "not a mapping"),
    ("instance:\n  - " + ENTRY + "}\n", ": instance", "did you mean 'instances'"),
    ("instances: {a: 1}\n", ": instances", "not a list"),
    (("instances:\n  - " + ENTRY + ", gpu_memory_gb: -80}\n").replace("gpu_memory_gb: 80, ", ""),
     ": instances[0].gpu_memory_gb", "greater than 0"),
    ("instances:\n  - " + ENTRY + ", gpus: 4}\n", "", "found duplicate key 'gpus' (first given on line 2)"),
    ("instances:\n  - " + ENTRY.replace("vcpus: 8", "vcpus: -1") + "}\n", ": instances[0].vcpus", "greater than 0"),
    ("instances:\n  - " + ENTRY.replace("2026-01-01", "not a date") + "}\n", ": instances[0].source.date", "YYYY-MM-DD"),
    ("instances:\n  - " + ENTRY + ", prices: [{option: on-demand, usd_per_hour: -5, region: r, "
     "source: {url: x, date: '2026-01-01'}}]}\n", ": instances[0].prices[0].usd_per_hour", "greater than or equal"),
    ("instances:\n  - " + ENTRY + "}\n  - " + ENTRY + "}\n", ": instances[1].name", "already defined at instances[0]"),
    ("instances:\n  - {name: p5.48xlarge, gpus: -1}\n", ": instances[0].gpus", "greater than or equal"),
])
def test_bad_catalog_files_name_file_and_path(tmp_path, text, path, words):
    problems = _problems(tmp_path, text)
    f = str(tmp_path / "cat.yaml")
    assert any(p.path == f + path and words in str(p) for p in problems), [str(p) for p in problems]


def test_override_deep_merges_and_prices_merge_by_option_and_region(tmp_path):
    base = load().get("p5.48xlarge")
    cat, _ = _load(tmp_path, "instances:\n  - {name: p5.48xlarge, fabric: {gbps: 3201}, prices: [\n"
                   "    {option: on-demand, usd_per_hour: 50.0, region: us-east-1, source: {url: mine, date: '2026-09-01'}},\n"
                   "    {option: spot, usd_per_hour: 20.0, region: us-west-2, source: {url: mine, date: '2026-09-01'}}]}\n")
    it = cat.get("p5.48xlarge")
    assert it.price("on-demand") == 50.0 and it.price("spot") == 20.0
    assert it.price("capacity-block") == base.price("capacity-block") is not None      # kept, not dropped
    assert it.fabric.gbps == 3201 and it.fabric.devices == base.fabric.devices == 32      # the rest of fabric kept
    assert it.gpus == base.gpus and it.source == base.source


def test_new_entry_must_be_complete(tmp_path):
    problems = _problems(tmp_path, "instances:\n  - {name: brand-new, gpus: 8}\n")
    assert any(p.path.endswith("instances[0].cloud") for p in problems)


def test_every_figure_has_a_source_and_a_date():
    for it in load():
        assert it.source.url and it.source.date
        assert all(p.source.url and p.source.date for p in it.prices)
        if it.fabric.kind != "none":
            assert it.fabric.source is not None


def test_gpu_filter_is_exact_and_an_empty_result_is_an_error():
    from dynamo_iac.cli import app

    assert {i.gpu_model for i in load().select(gpu="b200")} == {"B200"}
    assert {i.gpu_model for i in load().select(gpu="a100")} == {"A100-40GB", "A100-80GB"}
    r = CliRunner().invoke(app, ["catalog", "--gpu", "tpu"])
    assert isinstance(r.exception, ConfigError) and "b200" in r.exception.problems[0].fix


def test_catalog_table_shows_sources_and_all_purchase_options_at_80_columns():
    from dynamo_iac.cli import app

    r = CliRunner().invoke(app, ["catalog", "--cloud", "aws"], env={"COLUMNS": "80"})
    assert r.exit_code == 0
    assert "14.75" in r.output and "https://aws.amazon.com/ec2/capacityblocks/pricing/" in r.output
    assert "192/2048" in r.output                       # vCPU/GiB visible at 80 columns
