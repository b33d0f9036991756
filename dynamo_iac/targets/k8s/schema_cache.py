"""What the validator extracts from a CRD file, cached as JSON keyed by the file's content.

Parsing a Dynamo CRD (megabytes of YAML) takes longer than everything else `dynamo-iac plan`
does besides loading the cloud SDKs; JSON of the same data loads in a few milliseconds. The key
is the SHA-256 of the file's bytes and of FORMAT, so an edited or replaced CRD is parsed afresh
and a stale entry is never read. The cache lives in $XDG_CACHE_HOME/dynamo-iac (default
~/.cache/dynamo-iac); when it cannot be read or written the file is simply parsed.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

# bump when what is extracted (validate._extract) changes shape or meaning
FORMAT = "crd-schemas-1"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dynamo-iac"


def cached(data: bytes, extract: Callable[[bytes], Any]) -> Any:
    """extract(data), or the JSON of an earlier extract of the same bytes. Only values that
    survive a JSON round trip unchanged are stored, so a cached result equals a fresh one."""
    key = hashlib.sha256(FORMAT.encode() + b"\0" + data).hexdigest()
    path = cache_dir() / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    value = extract(data)
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
        if json.loads(text) != value:        # e.g. YAML dates or int keys: keep the parse only
            return value
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
    except (OSError, TypeError, ValueError):
        return value
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)                # atomic: a concurrent reader sees all or nothing
    except OSError:
        Path(tmp).unlink(missing_ok=True)
    return value
