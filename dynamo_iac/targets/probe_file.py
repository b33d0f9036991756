"""Extra readiness/failure probes per graph component, from a side file both targets read.

The graph model says what runs, not how a target watches it, so probes live next to the graph
in their own file (`dynamo-iac local up --probes FILE`, `dynamo-iac slurm render|submit|sweep
--probes FILE`):

    probes:
      Frontend:
        ready:
          - {type: http, path: /v1/models, body: '"tiny"'}   # port: the frontend's own
      Worker:                                  # a worker's name (graph.worker_names())
        ready:
          - {type: log, pattern: "mocker engine ready", deadline: 30}
        fail:
          - {type: log, pattern: "CUDA out of memory"}
    default_failure_patterns: true             # also fail on a worker's Python traceback etc.

`ready` probes must pass before the graph counts as ready; `fail` probes must never fire (a log
line that must not appear, from the start; a tcp/http probe that must keep answering, once the
graph is ready). Every replica of a component gets the component's probes on its own host, port
and log. Every mistake is a ConfigError naming `probes.<component>.<when>[i].<field>`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import yamlio
from ..errors import ConfigError, Problem
from .probes import default_failure_patterns, probe_from_spec

WHENS = ("ready", "fail")


@dataclass(frozen=True)
class ProbeDecl:
    component: str
    when: str                  # "ready" | "fail"
    spec: dict[str, Any]
    where: str                 # probes.<component>.<when>[i], for messages


@dataclass(frozen=True)
class ProbeFile:
    decls: tuple[ProbeDecl, ...] = ()
    default_failure_patterns: bool = True
    source: str = "probes"

    def check(self, components: list[str]) -> None:
        """Every declared component exists in the graph."""
        bad = []
        for c in sorted({d.component for d in self.decls} - set(components)):
            close = difflib.get_close_matches(c, components, n=1)
            bad.append(Problem(f"{self.source}: probes.{c}", "no such component in the graph",
                               f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(components)}"))
        if bad:
            raise ConfigError(bad)

    def entries(self, owner: str, component: str, kind: str, *, host: str, port: int | None, log: str,
                deadline: float) -> list[dict[str, Any]]:
        """The JSON-able probe entries (probes.ProbeSet) of one process / srun step."""
        base = {"owner": owner, "host": host, "port": port, "log": log, "deadline": deadline}
        out = []
        if self.default_failure_patterns:
            rx = "|".join(f"(?:{p})" for p in default_failure_patterns(kind))
            out.append({**base, "when": "fail", "spec": {"type": "log", "name": "fatal log line", "pattern": rx,
                                                          "interval": 0.25},
                        "where": "default failure patterns"})
        for d in self.decls:
            if d.component == component:
                out.append({**base, "when": d.when, "spec": dict(d.spec), "where": f"{self.source}: {d.where}"})
        return out


DEFAULT = ProbeFile()


def parse_probes(data: Any, source: str = "probes") -> ProbeFile:
    if data is None:
        return ProbeFile(source=source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with a `probes:` section", "probes",
                          "write probes: {Component: {ready: [...], fail: [...]}}")
    problems = [Problem(f"{source}: {k}", "unknown field", "use probes and default_failure_patterns")
                for k in data if k not in ("probes", "default_failure_patterns")]
    dfp = data.get("default_failure_patterns", True)
    if not isinstance(dfp, bool):
        problems.append(Problem(f"{source}: default_failure_patterns", f"must be true or false, got {dfp!r}", ""))
    comps = data.get("probes") or {}
    if not isinstance(comps, dict):
        problems.append(Problem(f"{source}: probes", "must map component names to {ready: [...], fail: [...]}",
                                "e.g. probes: {Worker: {fail: [{type: log, pattern: OOM}]}}"))
        comps = {}
    decls = []
    for comp, whens in comps.items():
        if not isinstance(whens, dict):
            problems.append(Problem(f"{source}: probes.{comp}", "must be a mapping with ready and/or fail lists", ""))
            continue
        for when, specs in whens.items():
            where = f"probes.{comp}.{when}"
            if when not in WHENS:
                close = difflib.get_close_matches(str(when), WHENS, n=1)
                problems.append(Problem(f"{source}: {where}", "unknown section",
                                        f"did you mean {close[0]!r}?" if close else "use ready or fail"))
                continue
            if not isinstance(specs, list):
                problems.append(Problem(f"{source}: {where}", "must be a list of probes", "e.g. [{type: tcp, port: 9090}]"))
                continue
            for i, spec in enumerate(specs):
                d = ProbeDecl(str(comp), when, spec, f"{where}[{i}]")
                try:    # bound once here so a bad spec is reported before anything starts
                    probe_from_spec(spec, when=when, host="127.0.0.1", port=1, log="x.log", deadline=60.0,
                                    path=f"{source}: {d.where}")
                except ConfigError as e:
                    problems += e.problems
                    continue
                decls.append(d)
    if problems:
        raise ConfigError(problems)
    return ProbeFile(tuple(decls), dfp, source)


def load_probes(path: str | Path | None) -> ProbeFile:
    if path is None:
        return DEFAULT
    data = yamlio.load_file(path, "--probes", "probe file")
    return parse_probes(data, str(path))
