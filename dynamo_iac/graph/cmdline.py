"""Reading Dynamo command lines as a container runs them: the importer lifts typed fields out of
them, and the graph checks that a verbatim (imported) command still agrees with its typed fields."""
from __future__ import annotations

import re
import shlex

from ..errors import GraphError

FLAG_TP = ("--tensor-parallel-size", "--tp", "--tp-size")
FLAG_PP = ("--pipeline-parallel-size", "--pp", "--pp-size")
FLAG_DP = ("--data-parallel-size", "--dp", "--dp-size")
FLAG_EP = ("--expert-parallel-size", "--ep", "--ep-size")
FLAG_MODEL = ("--model", "--model-path")
_VAR = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")

_SHELLS = {"sh", "bash", "dash", "zsh", "ash"}


def tokens(command: list[str] | None, args: list[str] | None, path: str = "") -> list[str]:
    """The argv of a container: each command/args element is one argument, except the script of
    a shell's -c, which is split the way the shell would (line continuations, quotes, comments).
    An unbalanced quote in a script is an error (the pod would fail the same way)."""
    argv = list(command or []) + list(args or [])
    out: list[str] = []
    script_at = None
    if argv and argv[0].rsplit("/", 1)[-1] in _SHELLS:
        script_at = next((i + 1 for i, a in enumerate(argv[1:], 1)
                          if a.startswith("-") and not a.startswith("--") and "c" in a), None)
    for i, part in enumerate(argv):
        if i != script_at:
            out.append(part)
            continue
        try:
            out += shlex.split(part.replace("\\\n", " "), comments=True)
        except ValueError as e:
            field = "command" if i < len(command or []) else "args"
            raise GraphError(f"the shell script cannot be parsed: {e}", path + field,
                             "balance the quotes in the script") from None
    return out


def flag_value(tokens: list[str] | tuple[str, ...], *names: str) -> str | None:
    """The value of --flag VALUE / --flag=VALUE among names; the last one wins, as with argparse."""
    found = None
    for i, tok in enumerate(tokens):
        for n in names:
            if tok == n and i + 1 < len(tokens):
                found = tokens[i + 1]
            elif tok.startswith(n + "="):
                found = tok[len(n) + 1:]
    return found


def flag(tokens: list[str], names: tuple[str, ...], env: dict[str, str]) -> str | None:
    """flag_value, with a bare $VAR / ${VAR} value read from the container's env."""
    val = flag_value(tokens, *names)
    m = _VAR.match(val) if val is not None else None
    return env.get(m.group(1)) if m else val


def as_int(v: str | None) -> int | None:
    return int(v) if v is not None and v.isdigit() else None


def env_values(container: dict) -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in container.get("env", []) or []
            if isinstance(e, dict) and "name" in e and "value" in e}


def parallel_flags(toks: list[str], env: dict[str, str]) -> dict[str, int]:
    """The parallelism a command line sets: {"tp": 2, "dp": 1 …}, only the flags it has."""
    out = {}
    for key, names in (("tp", FLAG_TP), ("pp", FLAG_PP), ("dp", FLAG_DP), ("ep", FLAG_EP)):
        v = as_int(flag(toks, names, env))
        if v is not None:
            out[key] = v
    return out
