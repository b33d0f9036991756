"""Kubernetes label and annotation syntax (apimachinery validation.IsQualifiedName / IsValidLabelValue),
checked on the graph at construction and on any manifest's metadata by `validate`."""
from __future__ import annotations

import re
from typing import Any

from ..errors import Problem

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ANNOTATIONS_MAX_BYTES = 256 * 1024


def key_problem(key: Any) -> str | None:
    """Why `key` is not a qualified name ([prefix/]name), or None."""
    if not isinstance(key, str):
        return f"key {key!r} must be a string"
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        return f"key {key!r}: the prefix must be a DNS subdomain (lowercase, digits, '-', '.'; at most 253)"
    if not name or len(name) > 63 or not _NAME.match(name):
        return (f"key {key!r}: the name must be 1-63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit")
    return None


def label_value_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"value {value!r} must be a string"
    if value and (len(value) > 63 or not _NAME.match(value)):
        return (f"value {value[:70]!r}{'…' if len(value) > 70 else ''} must be at most 63 letters, digits, '-', '_' "
                "or '.', starting and ending with a letter or digit (or empty)")
    return None


def metadata_problems(path: str, labels: Any, annotations: Any) -> list[Problem]:
    """Problems of a labels and an annotations map, at `path`.labels / `path`.annotations."""
    base = f"{path}." if path else ""
    out = []
    for key, value in (labels.items() if isinstance(labels, dict) else ()):
        for why in (key_problem(key), label_value_problem(value)):
            if why:
                out.append(Problem(f"{base}labels", f"label {why}", "use a valid label key and value, "
                                   "e.g. app.example.com/team: serving"))
    size = 0
    for key, value in (annotations.items() if isinstance(annotations, dict) else ()):
        why = key_problem(key) or (None if isinstance(value, str) else f"value of {key!r} must be a string")
        if why:
            out.append(Problem(f"{base}annotations", f"annotation {why}", "use a valid key ([prefix/]name) and "
                               "a string value"))
        size += len(str(key)) + len(str(value))
    if size > ANNOTATIONS_MAX_BYTES:
        out.append(Problem(f"{base}annotations", f"annotations total {size} bytes; Kubernetes allows "
                           f"{ANNOTATIONS_MAX_BYTES}", "move large data to a ConfigMap"))
    return out
