"""Read-only views of resource inputs that behave the same offline and inside a real CrossGuard run.

A value that is only known after apply (an ID, an ARN) is the marker UNKNOWN in the raw data.
Reading it through `Obj[...]` / `Arr[...]` raises `UnknownValue` (as pulumi_policy's proxy raises
UnknownValueError), so a rule never compares an unknown by accident; `peek()` reads tolerantly.
Also here: Kubernetes quantities, image references and shell command lines, which several rules read.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, Iterator

from ..graph.cmdline import flag_value  # noqa: F401  (re-exported: the rules read flags through values)
from ..graph.quantity import parse_quantity


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN: Any = _Unknown()


class UnknownValue(Exception):
    """A rule read a value that is known only after apply; the rule cannot decide (yet)."""

    def __init__(self, path: str):
        self.path = path
        super().__init__(f"{path or 'a value'} is known only after apply")


def is_unknown(v: Any) -> bool:
    return v is UNKNOWN


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def wrap(value: Any, path: str = "") -> Any:
    if isinstance(value, Mapping) and not isinstance(value, Obj):
        return Obj(value, path)
    if isinstance(value, (list, tuple)):
        return Arr(value, path)
    return value


class Obj(Mapping):
    """A mapping view; reading an unknown value raises UnknownValue with its path."""

    __slots__ = ("_d", "path")

    def __init__(self, data: Mapping[str, Any], path: str = ""):
        self._d = data
        self.path = path

    def __getitem__(self, key: str) -> Any:
        v = self._d[key]
        p = _join(self.path, key)
        if v is UNKNOWN:
            raise UnknownValue(p)
        return wrap(v, p)

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def peek(self, key: str, default: Any = None) -> Any:
        """The value, or default when it is missing or unknown."""
        v = self._d.get(key, default)
        return default if v is UNKNOWN else wrap(v, _join(self.path, key))

    def dig(self, *keys: Any, default: Any = None) -> Any:
        """Nested read (keys and list indexes); default when a step is missing, None or the wrong type.
        Raises UnknownValue when a step is unknown."""
        cur: Any = self
        for k in keys:
            if isinstance(cur, Obj) and isinstance(k, str):
                if k not in cur._d or cur._d[k] is None:
                    return default
                cur = cur[k]
            elif isinstance(cur, Arr) and isinstance(k, int):
                if not -len(cur) <= k < len(cur):
                    return default
                cur = cur[k]
            else:
                return default
        return cur

    @property
    def raw(self) -> Mapping[str, Any]:
        return self._d

    def __repr__(self) -> str:
        return f"Obj({self.path or '<root>'}: {dict(self._d)!r})"


class Arr(Sequence):
    __slots__ = ("_l", "path")

    def __init__(self, data: Sequence[Any], path: str = ""):
        self._l = data
        self.path = path

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self._l)))]
        v = self._l[i]
        p = _join(self.path, i if i >= 0 else len(self._l) + i)
        if v is UNKNOWN:
            raise UnknownValue(p)
        return wrap(v, p)

    def __len__(self) -> int:
        return len(self._l)

    def known(self) -> list[Any]:
        """The items that are known (unknown items are skipped)."""
        return [wrap(v, _join(self.path, i)) for i, v in enumerate(self._l) if v is not UNKNOWN]

    @property
    def raw(self) -> Sequence[Any]:
        return self._l


def as_obj(v: Any, path: str = "") -> Obj:
    """v as an Obj (an empty one when v is missing or not a mapping)."""
    if isinstance(v, Obj):
        return v
    return Obj(v if isinstance(v, Mapping) else {}, path)


def as_arr(v: Any, path: str = "") -> Arr:
    if isinstance(v, Arr):
        return v
    return Arr(v if isinstance(v, (list, tuple)) else [], path)


def plain(v: Any) -> Any:
    """Deep copy into plain dict/list (UNKNOWN stays UNKNOWN)."""
    if isinstance(v, Obj):
        v = v.raw
    if isinstance(v, Arr):
        v = v.raw
    if isinstance(v, Mapping):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def truthy(v: Any) -> bool:
    """Helm/Kubernetes style booleans: true, "true", "True", 1."""
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return v.strip().lower() in ("true", "yes", "1", "on")
    if isinstance(v, (int, float)):
        return v != 0
    return False


# ------------------------------------------------------------------------------------ quantities
def quantity(v: Any) -> float | None:
    """A Kubernetes quantity ("16Gi", "500m", 4) as a number; None when it is not one. The
    graph's parser (one grammar for graph, validator and policies); recorded inputs carry
    JSON numbers as floats, which are quantities too."""
    if isinstance(v, float):
        return v
    q = parse_quantity(v)
    return None if q is None else float(q)


def gib(v: float) -> str:
    return f"{v / 2**30:g}Gi"


# ------------------------------------------------------------------------------------ images
SEMVER_TAG = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def split_image(image: str) -> tuple[str, str, str | None, str | None]:
    """(registry, repository, tag, digest) with Docker Hub's defaults made explicit:
    "python:3.12" → ("docker.io", "library/python", "3.12", None)."""
    ref, _, digest = image.partition("@")
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", ref
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    last = path.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        path, tag = path.rsplit(":", 1)
    return registry, path, tag, digest or None


def normalized_image(image: str) -> str:
    """registry/repository (no tag, no digest)."""
    registry, path, _, _ = split_image(image)
    return f"{registry}/{path}"


def version_of_tag(tag: str | None) -> str | None:
    """The release in a semver tag: "1.2.0-efa" → "1.2.0"."""
    if not tag:
        return None
    m = re.match(r"^v?(\d+\.\d+\.\d+)", tag)
    return m.group(1) if m else None


# ------------------------------------------------------------------------------------ command lines
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_SHELLS = ("sh", "bash", "dash", "zsh", "ash")


def command_tokens(parts: Sequence[Any], env: Mapping[str, str] | None = None) -> list[str]:
    """A container's command + args as the engine's argv.

    Exec form: each element is one argument; Kubernetes expands $(VAR) from the env.
    Shell form (`sh -c "exec python3 -m …"`, as many recipes write it): the script is split the
    way the shell splits it, then ${VAR} / $VAR come from the container's literal env."""
    env = env or {}
    items = [p for p in parts if isinstance(p, str)]
    k8s = [_K8S_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), p) for p in items]
    if not k8s or k8s[0].rsplit("/", 1)[-1] not in _SHELLS:
        return k8s
    out: list[str] = []
    script_next = False
    for p in k8s:
        if script_next:
            script_next = False
            text = p.replace("\\\n", " ")
            try:
                toks = shlex.split(text, comments=True)
            except ValueError:
                toks = text.split()
            out += [_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), t) for t in toks]
            continue
        out.append(p)
        if p.startswith("-") and not p.startswith("--") and p.endswith("c"):
            script_next = True           # -c, -lc, -ec: the next argument is the script
    return out


def has_flag(tokens: Sequence[str], *names: str) -> bool:
    return any(t in names or any(t.startswith(n + "=") for n in names) for t in tokens)
