"""Where the Dynamo and aiperf interpreters are.

Both live in their own venvs (scripts/dynamo-env.sh): ai-dynamo 1.6.x pins pydantic<=2.13.5 and
aiperf 0.13 pins pydantic 2.14.3, so neither can share this package's interpreter or each other's.
Lookup order: DYNAMO_IAC_{DYNAMO,AIPERF}_PYTHON, then `.venv-{dynamo,aiperf}` under
DYNAMO_IAC_VENV_ROOT, the repository this package runs from, and the current directory.
"""
from __future__ import annotations

import os
from pathlib import Path

from ...errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]
ENV_VARS = {"dynamo": "DYNAMO_IAC_DYNAMO_PYTHON", "aiperf": "DYNAMO_IAC_AIPERF_PYTHON"}


def _candidates(kind: str) -> list[Path]:
    roots = [os.environ.get("DYNAMO_IAC_VENV_ROOT"), str(REPO_ROOT), os.getcwd()]
    out: list[Path] = []
    for r in roots:
        if r:
            p = Path(r) / f".venv-{kind}" / "bin" / "python"
            if p not in out:
                out.append(p)
    return out


def find_python(kind: str) -> str:
    """The interpreter for `kind` ("dynamo" or "aiperf"); ConfigError with the fix if there is none."""
    var = ENV_VARS[kind]
    given = os.environ.get(var)
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise ConfigError(f"{given!r} is not an executable interpreter", var,
                              f"point {var} at a python with {'ai-dynamo' if kind == 'dynamo' else 'aiperf'} "
                              "installed, or unset it to use the project's venv")
        return given
    tried = _candidates(kind)
    for p in tried:
        if os.access(p, os.X_OK):
            return str(p)      # not resolved: the venv's own path makes python find pyvenv.cfg
    raise ConfigError(f"no {kind} runtime found (looked for {', '.join(str(p) for p in tried)})", var,
                      f"run scripts/dynamo-env.sh {kind} (creates .venv-{kind}) or set {var}")
