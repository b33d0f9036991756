"""Run a stack's program offline: typed config → the same program `pulumi up` runs → a StackRecord.

Config is checked before the program starts, and the program checks the graph, the catalog and
the capacity before it registers anything; so an invalid stack fails with one clear error and
records nothing.

The program gets exactly the stack's config, as the engine would pass it. The one thing that
cannot be reproduced offline is decryption: a `secure:` value becomes a placeholder marked
secret, so the program takes the same branch as under `pulumi up` (e.g. an HF token Secret is
created exactly when the stack has a token) and the placeholder is masked like the real value.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..stacks.config import (PROJECT, StackConfig, is_credential_key, is_secure, parse, read_stack_file,
                             repo_root, stack_name)
from .record import SECRET, StackRecord

# stands in for a `secure:` value the offline engine cannot decrypt (never a real credential)
ENCRYPTED_PLACEHOLDER = "offline-preview-encrypted-value"


@dataclass
class StackRun:
    stack: str
    config: StackConfig
    record: StackRecord
    raw_config: dict[str, Any]                             # the stack file's `config:` (read_stack_file)
    path: Path                                             # the stack file
    built: dict[str, Any] = field(default_factory=dict)    # graph, capacity, cluster, platform, deployment

    @property
    def capacity(self):
        return self.built.get("capacity")

    @property
    def graph(self):
        return self.built.get("graph")


def engine_config(raw: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Flat Pulumi config as the engine passes it (structured values JSON-encoded); `secure:`
    values → a placeholder, listed as secret keys."""
    cfg: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        if is_secure(value):
            cfg[str(key)] = ENCRYPTED_PLACEHOLDER
            secret_keys.append(str(key))
        else:
            cfg[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return cfg, sorted(secret_keys)


def _mask_secure(value: Any) -> Any:
    if is_secure(value):
        return SECRET
    if isinstance(value, dict):
        return {k: _mask_secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secure(v) for v in value]
    return value


def masked_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The stack config as reports show it: encrypted values (at any depth) and every value the
    config-secrets-encrypted rule reads as a credential, plain or not, are masked."""
    return {str(k): SECRET if is_credential_key(k) and v not in (None, "") else _mask_secure(v)
            for k, v in sorted(raw.items())}


def run_stack(stack: str, root: Path | None = None) -> StackRun:
    """`stack`: a name (stacks/Pulumi.<stack>.yaml under root) or the path of a stack file.
    An HF token comes from the stack config (`dynamo-iac:hfToken`) or $DYNAMO_IAC_HF_TOKEN, read
    by the program itself — the same as under `pulumi up`."""
    from ..stacks.program import run
    from .engine import run_program

    ours, raw, path = read_stack_file(stack, root)
    root = root or repo_root(path)
    name = stack_name(stack, path)
    cfg = parse(ours, path.name)
    engine_cfg, secret_keys = engine_config(raw)
    built: dict[str, Any] = {}

    def program() -> None:
        built.update(run(cfg, name, root))

    record = run_program(program, project=PROJECT, stack=name, config=engine_cfg, secret_keys=secret_keys)
    record.config = masked_config(raw)
    return StackRun(stack=name, config=cfg, record=record, raw_config=raw, path=path, built=built)
