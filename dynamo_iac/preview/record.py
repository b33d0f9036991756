"""A resource as the offline engine recorded it: what policies, the plan report and plan.json read.

The engine (preview/engine.py) fills these from the mock monitor; `inputs` are plain JSON values
with unknowns as the string UNKNOWN and secrets as SECRET (the real value never leaves the engine).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UNKNOWN = "(known after apply)"
SECRET = "[secret]"


@dataclass
class RecordedResource:
    urn: str
    type: str                       # e.g. aws:eks/nodeGroup:NodeGroup, kubernetes:helm.sh/v3:Release
    name: str
    parent: str | None              # parent URN (None for the stack)
    provider: str | None            # provider reference, if explicit
    dependencies: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    custom: bool = True             # False for ComponentResources
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    replace_on_changes: list[str] = field(default_factory=list)
    secret_paths: list[str] = field(default_factory=list)   # input paths that held secrets


@dataclass
class StackRecord:
    """Everything one offline run of a stack's program produced."""

    stack: str
    project: str
    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)    # typed stack config, secrets masked

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]
