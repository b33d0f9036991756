"""YAML reading for every file the project loads: libyaml's safe loader when PyYAML has it
(several times faster than the pure-Python one on the catalog and the CRDs), same semantics,
except that a key given twice in one mapping is an error (PyYAML silently keeps the last one;
Pulumi and kubectl reject such files), reported with both lines."""
from __future__ import annotations

from typing import Any, Iterator

import yaml
from yaml.constructor import ConstructorError

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


class Loader(_Base):  # type: ignore[misc,valid-type]
    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:        # `<<: *anchor` then explicit keys: overrides, not duplicates
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:                 # an unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           f"found duplicate key {key!r} (first given on line {first.line + 1})",
                                           key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def load(text: str) -> Any:
    return yaml.load(text, Loader=Loader)


def load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=Loader)


def load_file(path: Any, field: str, what: str = "file") -> Any:
    """A user's YAML (or JSON) file, or a ConfigError naming the option it came from."""
    from pathlib import Path

    from .errors import ConfigError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {str(p)!r} does not exist" if not p.exists() else f"{what} {str(p)!r} is not a file",
                          field, "check the path")
    try:
        return load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({e})", field, "fix the YAML syntax") from None
