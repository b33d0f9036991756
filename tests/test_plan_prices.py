"""Prices are regional and sourced: every required type has an on-demand entry (null only with the
reason), the plan prices a pool where it runs and never with another region's figure, and an
unknown cost says which type lacks a price and how to add one."""
from __future__ import annotations

import io
import re
import textwrap

import pytest
from rich.console import Console

from dynamo_iac import patterns
from dynamo_iac.hardware.catalog import load
from dynamo_iac.hardware.model import in_region, region_of
from dynamo_iac.hardware.pool import GpuPool
from dynamo_iac.plan import plan
from dynamo_iac.plan.render import cost_lines, print_plan

CAT = load()
# issue 3's required types, and the system (CPU) pool type the AWS cluster uses
REQUIRED = ["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge", "p6-b200.48xlarge",
            "g6e.12xlarge", "g6e.24xlarge", "g6e.48xlarge", "m7i.2xlarge",
            "Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4", "Standard_ND96isr_H100_v5",
            "Standard_ND96isr_H200_v5", "Standard_ND128isr_NDR_GB200_v6",
            "a2-ultragpu-8g", "a3-highgpu-8g", "a3-megagpu-8g", "a3-ultragpu-8g", "a4-highgpu-8g"]
AGG = patterns.aggregated("a", "m/x", tp=8)


@pytest.mark.parametrize("name", REQUIRED)
def test_every_required_type_has_a_sourced_on_demand_entry(name):
    entries = [p for p in CAT.get(name).prices if p.option == "on-demand"]
    assert entries, f"{name}: no on-demand entry"
    for p in entries:
        assert p.source.url.startswith("https://") and p.source.date != "-"
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*-?\d+|[a-z]+\d*", p.region), p.region     # a real region name
        if p.usd_per_hour is None:
            assert p.source.note.startswith("unknown: "), f"{name} {p.region}: null price without the reason"


def test_zone_names_its_region_but_a_local_zone_is_its_own():
    assert in_region("us-east-1a", "us-east-1") and in_region("us-central1-b", "us-central1")
    assert in_region("eastus", "eastus") and not in_region("us-east-1-atl-1a", "us-east-1")
    assert [region_of(z) for z in ("us-east-1a", "us-central1-b", "us-east-1-atl-1a", "eastus")] == [
        "us-east-1", "us-central1", "us-east-1-atl-1", "eastus"]
    assert not in_region("us-west-2a", "us-east-1") and not in_region("1", "eastus")


def test_the_pool_is_priced_in_its_region():
    p5 = CAT.get("p5.48xlarge")
    for where in ("us-east-1a", "us-west-2b"):
        c = plan(AGG, [GpuPool(name="h", instance_type="p5.48xlarge", max_nodes=2, zones=[where])])
        assert c.cost_per_hour() == pytest.approx(p5.price("on-demand", where[:-1]))
        assert c.pools[0].prices()[0]["region"] == where[:-1] and not any("price" in w for w in c.warnings)
    # the stack's region wins over the zone for the lookup (Azure zones are numbers)
    nd = GpuPool(name="nd", instance_type="Standard_ND96isr_H100_v5", max_nodes=2, zones=["1"])
    assert plan(AGG, [nd], region="eastus").pools[0].where() == "eastus"
    assert plan(AGG, [nd]).pools[0].where() is None


def test_another_regions_price_is_never_used():
    p5 = CAT.get("p5.48xlarge")
    assert "ap-south-1" not in p5.price_regions() and p5.price_regions()
    pool = GpuPool(name="h", instance_type="p5.48xlarge", max_nodes=2, zones=["ap-south-1a"])
    c = plan(AGG, [pool], region="ap-south-1")
    assert c.cost_per_hour() is None and c.pools[0].price() is None and c.pools[0].prices() == [
        r for r in c.pools[0].prices() if r["region"] == "ap-south-1"]
    (w,) = [w for w in c.warnings if w.startswith("price unknown")]
    assert w == (f"price unknown for p5.48xlarge (on-demand): no on-demand price for p5.48xlarge in ap-south-1: the "
                 f"catalog prices it in {', '.join(p5.price_regions())} only, and prices are regional (another "
                 "region's is not used); h cost not computed")
    assert c.to_dict()["pools"][0]["price_note"] == w.split(": ", 1)[1].rsplit(";", 1)[0]


def test_a_pool_without_region_or_zone_is_priced_with_a_warning():
    g6e = CAT.get("g6e.12xlarge")
    c = plan(patterns.aggregated("a", "m/x", tp=2, replicas=2), [GpuPool(name="g", instance_type="g6e.12xlarge")])
    first = next(p for p in g6e.prices if p.option == "on-demand")
    assert c.cost_per_hour() == round(first.usd_per_hour, 4)
    assert (f"g6e.12xlarge on-demand priced as in {first.region}: the pool's region is not known (set the "
            "stack's region or the pool's zones)") in c.warnings


@pytest.mark.parametrize("date", ["'2026-12-01'", "2026-12-01"])      # quoted, or a YAML date as typed
def test_unknown_cost_names_the_type_and_the_override_that_adds_it(tmp_path, monkeypatch, date):
    nd = GpuPool(name="nd", instance_type="Standard_ND96isr_H100_v5", max_nodes=2)
    c = plan(AGG, [nd], region="eastus")
    lines = cost_lines(c)
    assert lines[0] == ("cost: unknown — no on-demand price for Standard_ND96isr_H100_v5 in eastus (pool nd) · "
                        "GPU utilisation 100%")
    assert lines[1] == "  add it with a catalog file, DYNAMO_IAC_CATALOG=<file.yaml>:"
    # the printed snippet, filled in, is a catalog file that prices the pool
    snippet = textwrap.dedent("\n".join(lines[2:]))
    filled = snippet.replace("<USD>", "12.5").replace("<where you read it>", "https://example.com/p") \
                    .replace("<YYYY-MM-DD>", date)
    f = tmp_path / "prices.yaml"
    f.write_text(filled + "\n")
    monkeypatch.setenv("DYNAMO_IAC_CATALOG", str(f))
    priced = plan(AGG, [nd], catalog=load(), region="eastus")
    assert priced.cost_per_hour() == pytest.approx(12.5)
    assert cost_lines(priced) == [f"cost: $12.50/hour · ${12.5 * 730:,.0f}/month · GPU utilisation 100%"]


def test_unknown_chosen_option_still_shows_the_priced_ones():
    p5 = CAT.get("p5.48xlarge")
    pool = GpuPool(name="h", instance_type="p5.48xlarge", max_nodes=2, zones=["us-east-1a"], purchase_option="spot")
    c = plan(AGG, [pool])
    buf = io.StringIO()
    print_plan(c, Console(file=buf, width=200, color_system=None))
    out = buf.getvalue()
    assert "cost: unknown — no spot price for p5.48xlarge in us-east-1 (pool h)" in out     # the zone's region
    assert "option: spot, region: us-east-1, usd_per_hour: <USD>" in out
    od = p5.price("on-demand", "us-east-1")
    assert f"h on-demand (us-east-1): ${od:,.2f}/hour" in out
