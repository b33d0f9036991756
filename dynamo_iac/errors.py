"""One error type for every input the library rejects.

Each error names *where* (a dotted field path, a YAML path or a resource), *what* is wrong and
*how to fix it*, so the CLI can print it as one line and never a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    path: str          # e.g. "workers[1].parallelism.tp" or "spec.components[0].podTemplate"
    message: str       # what is wrong
    fix: str = ""      # what to do about it

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{text} (fix: {self.fix})" if self.fix else text


@dataclass
class DynamoIacError(Exception):
    """Raised for bad user input anywhere (graph, pools, stack config, plan, target)."""

    problems: list[Problem] = field(default_factory=list)

    def __init__(self, problems: "list[Problem] | Problem | str", path: str = "", fix: str = ""):
        if isinstance(problems, str):
            problems = [Problem(path, problems, fix)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class GraphError(DynamoIacError):
    """The serving graph is invalid."""


class PlanError(DynamoIacError):
    """The graph does not fit the node pools."""


class ConfigError(DynamoIacError):
    """A stack, cluster or catalog file is invalid."""
