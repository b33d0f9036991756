"""Policy settings (`dynamo-iac:policy`), levels per stack, and the small readers the rules share."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamo_iac.errors import ConfigError
from dynamo_iac.policies import RULES
from dynamo_iac.policies.rules import rule
from dynamo_iac.policies.runner import evaluate
from dynamo_iac.policies.model import StackView
from dynamo_iac.policies.settings import PolicySettings, settings_schema
from dynamo_iac.policies.values import command_tokens, normalized_image, quantity, split_image
from test_policies_support import dgd, disagg, render

pytestmark = pytest.mark.policy


def test_levels_and_settings_per_stack() -> None:
    s = PolicySettings.parse({"all": "advisory", "cost-budget": {"enforcementLevel": "mandatory", "maxUsdPerHour": 250},
                              "kai-volcano-exclusive": "disabled"}, "Pulumi.x.yaml", RULES)
    assert s.level(rule("cost-budget")) == "mandatory"
    assert s.level(rule("kai-volcano-exclusive")) == "disabled"
    assert s.level(rule("image-pinned")) == "advisory"           # from `all`
    assert s.config(rule("cost-budget")).max_usd_per_hour == 250
    assert PolicySettings().level(rule("image-pinned")) == "mandatory"


def test_levels_change_the_report() -> None:
    doc = render(disagg(), "v1beta1")
    doc["spec"]["components"][1]["podTemplate"]["spec"]["containers"][0]["image"] = "vllm/vllm-openai:latest"
    stack = StackView([dgd(doc)])
    rules = [rule("image-pinned")]
    assert [v.level for v in evaluate(stack, PolicySettings(), rules).violations] == ["mandatory"]
    adv = PolicySettings.parse({"image-pinned": "advisory"}, "t", RULES)
    report = evaluate(stack, adv, rules)
    assert [v.level for v in report.violations] == ["advisory"] and not report.failed
    off = PolicySettings.parse({"image-pinned": "disabled"}, "t", RULES)
    assert evaluate(stack, off, rules).violations == [] and evaluate(stack, off, rules).rules == []


def test_settings_errors_name_the_path() -> None:
    with pytest.raises(ConfigError) as e:
        PolicySettings.parse({"cost-budget": {"maxUsdPerHr": 5, "enforcementLevel": "strict"},
                              "image-pined": "advisory", "all": "remediate",
                              "download-job-memory": {"minMemoryGi": -1}}, "Pulumi.x.yaml", RULES)
    assert [str(p) for p in e.value.problems] == [
        "Pulumi.x.yaml: dynamo-iac:policy.all: no rule of this pack remediates (fix: use one of advisory, mandatory, "
        "disabled)",
        "Pulumi.x.yaml: dynamo-iac:policy.cost-budget.enforcementLevel: invalid enforcement level 'strict' (fix: use "
        "one of advisory, mandatory, disabled)",
        "Pulumi.x.yaml: dynamo-iac:policy.cost-budget.maxUsdPerHr: unknown setting (fix: did you mean "
        "'maxUsdPerHour'?)",
        "Pulumi.x.yaml: dynamo-iac:policy.download-job-memory.minMemoryGi: Input should be greater than or equal to 0",
        "Pulumi.x.yaml: dynamo-iac:policy.image-pined: no such policy rule (fix: did you mean 'image-pinned'?)",
    ]
    with pytest.raises(ConfigError, match="must be a mapping"):
        PolicySettings.parse(["cost-budget"], "Pulumi.x.yaml", RULES)


def test_settings_file_overrides_stack(tmp_path: Path) -> None:
    stack = PolicySettings.parse({"cost-budget": {"maxUsdPerHour": 100, "maxGpus": 16}}, "stack", RULES)
    f = tmp_path / "policy.json"          # Pulumi's --policy-pack-config format
    f.write_text('{"cost-budget": {"enforcementLevel": "advisory", "maxUsdPerHour": 300}}')
    merged = stack.merged(PolicySettings.load_file(f, RULES))
    cfg = merged.config(rule("cost-budget"))
    assert (cfg.max_usd_per_hour, cfg.max_gpus, merged.level(rule("cost-budget"))) == (300, 16, "advisory")
    y = tmp_path / "Pulumi.other.yaml"     # or a whole stack file
    y.write_text("config:\n  dynamo-iac:policy:\n    image-pinned: advisory\n")
    assert PolicySettings.load_file(y, RULES).level(rule("image-pinned")) == "advisory"
    with pytest.raises(ConfigError, match="cannot read"):
        PolicySettings.load_file(tmp_path / "missing.json", RULES)


def test_settings_schema_covers_every_rule() -> None:
    import jsonschema

    schema = settings_schema(RULES)
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate({"all": "advisory", "cost-budget": {"maxUsdPerHour": 10}, "image-pinned": "mandatory"}, schema)
    assert set(schema["properties"]) == {"all", *(r.name for r in RULES)}


# ------------------------------------------------------------------------------------ readers
def test_quantities_images_and_command_lines() -> None:
    assert [quantity(x) for x in ("16Gi", "500m", "1.5Ti", 4, "80G", "x", True)] == [
        16 * 2**30, 0.5, 1.5 * 2**40, 4.0, 80e9, None, None]
    assert split_image("python:3.12-slim") == ("docker.io", "library/python", "3.12-slim", None)
    assert split_image("localhost:5000/a/b@sha256:ab") == ("localhost:5000", "a/b", None, "sha256:ab")
    assert split_image("nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.2.0-efa") == (
        "nvcr.io", "nvidia/ai-dynamo/vllm-runtime", "1.2.0-efa", None)
    # exec form: one element, one argument (a JSON value keeps its spaces); $(VAR) from the env
    assert command_tokens(["python3", "-m", "dynamo.vllm", "--kv-transfer-config", '{"a": 1}', "--tp", "$(TP)"],
                          {"TP": "4"}) == ["python3", "-m", "dynamo.vllm", "--kv-transfer-config", '{"a": 1}',
                                           "--tp", "4"]
    # shell form: the script is split like sh does, then ${VAR} is expanded inside its quotes
    assert command_tokens(["/bin/sh", "-lc", 'exec python3 -m dynamo.vllm \\\n --kv-transfer-config "${KV}" # c'],
                          {"KV": '{"kv_connector": "NixlConnector"}'}) == [
        "/bin/sh", "-lc", "exec", "python3", "-m", "dynamo.vllm", "--kv-transfer-config",
        '{"kv_connector": "NixlConnector"}']


_name = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)


@given(registry=st.sampled_from(["", "nvcr.io/", "ghcr.io/", "localhost:5000/", "docker.io/"]),
       path=st.lists(_name, min_size=1, max_size=3), tag=st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
                                                                                     fullmatch=True))
def test_image_references_round_trip(registry: str, path: list[str], tag: str | None) -> None:
    image = registry + "/".join(path) + (f":{tag}" if tag else "")
    reg, repo, got_tag, digest = split_image(image)
    assert got_tag == tag and digest is None
    assert normalized_image(image) == f"{reg}/{repo}"
    if not registry or registry == "docker.io/":
        assert reg == "docker.io" and (repo == "/".join(path) if len(path) > 1 else repo == f"library/{path[0]}")
    else:
        assert reg == registry.rstrip("/") and repo == "/".join(path)
