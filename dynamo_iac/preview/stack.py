"""Run a stack's program offline: typed config → the same program `pulumi up` runs → a StackRecord.

Config is checked before the program starts, and the program checks the graph, the catalog and
the capacity before it registers anything; so an invalid stack fails with one clear error and
records nothing.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..stacks.config import PROJECT, StackConfig, parse, read_stack_file, repo_root
from .record import SECRET, StackRecord

# The HF token of an offline run: the real one is never needed to preview, and a `secure:` value
# cannot be decrypted without the Pulumi CLI. Tests pass a sentinel to prove it never leaks.
HF_TOKEN_ENV = "DYNAMO_IAC_HF_TOKEN"
OFFLINE_TOKEN = "offline-preview-token"


@dataclass
class StackRun:
    stack: str
    config: StackConfig
    record: StackRecord
    built: dict[str, Any] = field(default_factory=dict)    # graph, capacity, cluster, platform, deployment

    @property
    def capacity(self):
        return self.built.get("capacity")

    @property
    def graph(self):
        return self.built.get("graph")


def _engine_config(raw: dict[str, Any], token: str) -> tuple[dict[str, str], list[str]]:
    """Flat Pulumi config (structured values JSON-encoded, as the engine passes them)."""
    cfg: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            continue                       # encrypted: replaced below / not readable offline
        cfg[str(key)] = value if isinstance(value, str) else json.dumps(value)
    cfg[f"{PROJECT}:hfToken"] = token
    return cfg, [f"{PROJECT}:hfToken"]


def _masked_config(raw: dict[str, Any]) -> dict[str, Any]:
    return {str(k): (SECRET if (isinstance(v, dict) and set(v) == {"secure"}) or str(k).endswith(":hfToken") else v)
            for k, v in sorted(raw.items())}


def run_stack(stack: str, root: Path | None = None, *, hf_token: str | None = None) -> StackRun:
    from ..stacks.program import build
    from .engine import run_program

    root = root or repo_root()
    ours, raw, path = read_stack_file(stack, root)
    cfg = parse(ours, path.name)
    token = hf_token or os.environ.get(HF_TOKEN_ENV) or OFFLINE_TOKEN
    engine_cfg, secret_keys = _engine_config(raw, token)
    built: dict[str, Any] = {}

    def program() -> None:
        built.update(build(cfg, stack, root))

    record = run_program(program, project=PROJECT, stack=stack, config=engine_cfg, secret_keys=secret_keys)
    record.config = _masked_config(raw)
    return StackRun(stack=stack, config=cfg, record=record, built=built)
