"""Generated command lines against every upstream example, per backend × role.

For each upstream component that runs `python3 -m dynamo.X`, the same component is built from
its typed fields (backend, role, model, parallelism, frontend port/router) with the command
generated, and the two command lines are compared:
  - the module is the same;
  - every flag that ALL upstream examples of that module × role set is generated (except the
    few in EXEMPT, each with its reason);
  - every flag both carry has the same value (except the free choices in FREE_VALUES).
Reads ../shared/reference (skips without it).
"""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from conftest import example_dgds, needs_shared
from dynamo_iac.graph import DynamoGraph, Frontend, Model, Planner, Worker
from dynamo_iac.graph.cmdline import FLAG_MODEL as _FLAG_MODEL, env_values as _env_values, flag as _flag
from dynamo_iac.graph.cmdline import tokens as _tokens

pytestmark = [pytest.mark.conformance, needs_shared]

# Set by every upstream example of a module × role, but not generated from the typed model:
EXEMPT = {
    "--extra-engine-args": "names an engine-config file inside the example's image or ConfigMap; "
                           "the typed model generates the parallelism flags instead (engine_args adds it)",
    "--page-size": "a KV page-size tuning only the examples/backends/sglang manifests set (the recipes "
                   "do not); engine_args adds it",
}
# Values that are a free choice of each manifest, not derived from the typed fields:
FREE_VALUES = {"--disaggregation-bootstrap-port", "--config"}


def _cmdline(container: dict) -> tuple[str, dict[str, str | bool]] | None:
    """(module, {flag: value}) of a `python -m dynamo.X …` command line, env variables resolved."""
    toks = _tokens(container.get("command"), container.get("args"))
    if "-m" not in toks[:-1]:
        return None
    at = toks.index("-m")
    env = _env_values(container)
    flags: dict[str, str | bool] = {}
    rest = toks[at + 2:]
    for i, tok in enumerate(rest):
        if not tok.startswith("--"):
            continue
        name = tok.split("=", 1)[0]
        value = _flag(rest, (name,), env)
        flags[name] = value if value is not None and not str(value).startswith("--") else True
    return toks[at + 1], flags


def _upstream(doc: dict) -> dict[str, dict]:
    """Component name → its main container, either API."""
    if doc["apiVersion"].endswith("v1beta1"):
        return {c["name"]: next((x for x in c.get("podTemplate", {}).get("spec", {}).get("containers", [])
                                 if x.get("name") == "main"), {}) for c in doc["spec"]["components"]}
    return {n: (s.get("extraPodSpec") or {}).get("mainContainer") or {} for n, s in doc["spec"]["services"].items()}


def _role(comp) -> str:
    return comp.role if isinstance(comp, Worker) else ("frontend" if isinstance(comp, Frontend) else "planner")


def _typed(comp, model_for: dict[str, tuple[str, str | None]]):
    """The same component from its typed fields only, command generated."""
    if isinstance(comp, Frontend):
        return Frontend(name=comp.name, port=comp.port, router_mode=comp.router_mode)
    if isinstance(comp, Planner):
        cfg = json.loads(comp.args[comp.args.index("--config") + 1])
        return Planner(name=comp.name, config={k: v for k, v in cfg.items() if k not in ("environment", "backend")})
    if comp.parallelism is not None:
        return Worker(name=comp.name, role=comp.role, parallelism=comp.parallelism)
    return Worker(name=comp.name, role=comp.role, gpus=max(comp.gpu_count, 1))


def _pairs():
    """(file, backend, role, module, upstream flags, generated flags) for every upstream command line."""
    out = []
    for fname, idx, doc in example_dgds():
        g = DynamoGraph.from_dgd(doc)
        containers = _upstream(doc)
        comps = [c for c in [g.frontend, *g.workers, g.planner] if c is not None]
        ups = {c.name: _cmdline(containers[c.name]) for c in comps}
        if not any(ups.values()):
            continue
        model = next(((f.get("--model") or f.get("--model-path"), f.get("--served-model-name"))
                      for u in ups.values() if u for f in [u[1]] if any(k in f for k in _FLAG_MODEL)), (None, None))
        mid = model[0] if isinstance(model[0], str) and not model[0].startswith("$") else "org/model"
        served = model[1] if isinstance(model[1], str) and not model[1].startswith("$") else None
        typed = {c.name: _typed(c, {}) for c in comps}
        built = DynamoGraph(name=g.name, backend=g.backend, model=Model(id=mid, served_name=served),
                            frontend=next((t for t in typed.values() if isinstance(t, Frontend)), None),
                            workers=[t for t in typed.values() if isinstance(t, Worker)],
                            planner=next((t for t in typed.values() if isinstance(t, Planner)), None),
                            hf_token_secret=None)
        rendered = {c["name"]: c["podTemplate"]["spec"]["containers"][0]
                    for c in built.to_dgd("v1beta1")["spec"]["components"]}
        for c in comps:
            if ups[c.name] is None:
                continue
            gen = _cmdline(rendered[c.name])
            assert gen is not None, f"{fname}: {c.name} has no generated command"
            out.append((f"{fname}#{idx}:{c.name}", g.backend, _role(c), ups[c.name], gen, mid != "org/model"))
    return out


PAIRS = _pairs() if example_dgds() else []


def _required() -> dict[tuple[str, str], set[str]]:
    """Flags every upstream example of a module × role sets."""
    seen: dict[tuple[str, str], list[set[str]]] = defaultdict(list)
    for _, _, role, (module, flags), _, _ in PAIRS:
        seen[(module, role)].append(set(flags))
    return {k: set.intersection(*v) - set(EXEMPT) for k, v in seen.items()}


def test_every_backend_and_role_is_covered():
    covered = {(b, r) for _, b, r, _, _, _ in PAIRS}
    for backend in ("vllm", "sglang", "trtllm"):
        for role in ("agg", "prefill", "decode"):
            assert (backend, role) in covered, f"no upstream {backend} {role} command line to compare with"
    assert {"frontend", "planner"} <= {r for _, _, r, _, _, _ in PAIRS}     # backend-independent


@pytest.mark.parametrize("where,backend,role,upstream,generated,known_model", PAIRS, ids=[p[0] for p in PAIRS])
def test_generated_command_matches_upstream(where, backend, role, upstream, generated, known_model):
    (up_mod, up), (gen_mod, gen) = upstream, generated
    assert gen_mod == up_mod
    missing = _required()[(up_mod, role)] - set(gen)
    assert not missing, f"upstream {up_mod} {role} workers always set {sorted(missing)}"
    for flag in set(up) & set(gen) - FREE_VALUES:
        u, v = up[flag], gen[flag]
        if isinstance(u, str) and u.startswith("$"):
            continue                             # a variable the example's env does not define
        if flag in _FLAG_MODEL + ("--served-model-name",) and not known_model:
            continue
        if flag == "--kv-transfer-config":       # the rest (NIXL backends, engine_id) is per fabric/pod
            u, v = ({k: json.loads(x)[k] for k in ("kv_connector", "kv_role")} for x in (u, v))
        assert v == u, f"{flag}: generated {v!r}, upstream {u!r}"


def test_sglang_disagg_workers_listen_on_all_interfaces():
    """PR #3666: without --host 0.0.0.0 the prefill bootstrap server binds loopback."""
    for _, backend, role, _, (_, gen), _ in PAIRS:
        if backend == "sglang" and role in ("prefill", "decode"):
            assert gen["--host"] == "0.0.0.0" and "--disaggregation-bootstrap-port" in gen


def test_planner_command_is_upstreams_exactly():
    for fname, idx, doc in example_dgds():
        g = DynamoGraph.from_dgd(doc)
        if g.planner is None:
            continue
        up = _upstream(doc)[g.planner.name]
        cfg = json.loads(up["args"][1])
        built = DynamoGraph(name="p", backend=cfg["backend"], model=Model("Qwen/Qwen3-0.6B"),
                            workers=[Worker(role="prefill"), Worker(role="decode")],
                            planner=Planner(config={k: v for k, v in cfg.items()
                                                    if k not in ("environment", "backend")}))
        main = next(c for c in built.to_dgd()["spec"]["components"] if c["type"] == "planner")
        main = main["podTemplate"]["spec"]["containers"][0]
        assert main["command"] == up["command"] and main["args"] == up["args"], fname


def test_planner_default_config_names_environment_and_backend():
    g = DynamoGraph(name="p", backend="sglang", model=Model("Qwen/Qwen3-0.6B"),
                    workers=[Worker(role="prefill"), Worker(role="decode")], planner=Planner())
    main = next(c for c in g.to_dgd("v1alpha1")["spec"]["services"].values() if c["componentType"] == "planner")
    main = main["extraPodSpec"]["mainContainer"]
    assert main["command"] == ["python3", "-m", "dynamo.planner"]
    assert json.loads(main["args"][1]) == {"environment": "kubernetes", "backend": "sglang"}
