"""Load a graph from a reference: `module.path:attr`, a graph YAML file, or a DGD manifest."""
from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import yaml

from .. import yamlio
from ..errors import GraphError


def load_graph(ref: str, base_dir: str | Path | None = None):
    from .model import DynamoGraph

    path = Path(base_dir or ".") / ref
    if path.suffix in (".yaml", ".yml", ".json") or path.is_file():
        if not path.is_file():
            raise GraphError(f"graph file {str(path)!r} does not exist", "graph", "check the path")
        try:
            docs = [d for d in yamlio.load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as e:
            raise GraphError(f"{path}: not valid YAML ({e})", "graph", "fix the YAML syntax") from None
        dgds = [d for d in docs if isinstance(d, dict) and d.get("kind") == "DynamoGraphDeployment"]
        if dgds:
            if len(dgds) > 1:
                raise GraphError(f"{path} holds {len(dgds)} DynamoGraphDeployments", "graph",
                                 "put one graph per file")
            return DynamoGraph.from_dgd(dgds[0])
        kinds = [d for d in docs if isinstance(d, dict) and "apiVersion" in d and "kind" in d]
        if kinds:
            k = kinds[0]
            what = {"DynamoGraphDeploymentRequest": "a DGDR: the operator profiles it and creates the DGD itself; "
                    "apply it with kubectl, or import the DGD it produced"}.get(k["kind"], "not a graph")
            raise GraphError(f"{path} holds a Kubernetes {k['apiVersion']} {k['kind']} ({what})", "graph",
                             "give a DynamoGraph file (name, backend, model, workers …) or a "
                             "DynamoGraphDeployment manifest; `dynamo-iac validate` checks other kinds")
        if len(docs) != 1 or not isinstance(docs[0], dict):
            raise GraphError(f"{path} is neither a DynamoGraph file nor a DynamoGraphDeployment", "graph",
                             "write one mapping with the DynamoGraph fields (name, backend, model, workers …)")
        return DynamoGraph.from_dict(docs[0])
    if ":" not in ref:
        raise GraphError(f"graph reference {ref!r} is neither a file nor 'module:attribute'", "graph",
                         "use e.g. mypkg.graphs:llama70b or graphs/llama70b.yaml")
    mod_name, _, attr = ref.partition(":")
    # like `python -m`: modules next to the user (or the stack's base dir) import without PYTHONPATH
    for d in (str(Path(base_dir).resolve()) if base_dir else None, str(Path.cwd())):
        if d and d not in sys.path:
            sys.path.insert(0, d)
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise GraphError(f"cannot import module {mod_name!r}: {e}", "graph",
                         "check the module path and that it is importable (PYTHONPATH)") from None
    obj = getattr(mod, attr, None)
    if obj is None:
        raise GraphError(f"module {mod_name!r} has no attribute {attr!r}", "graph", "check the attribute name")
    if isinstance(obj, type):        # calling a class would build it with no fields: "name: Field required"
        raise GraphError(f"{ref} is a class ({obj.__module__}.{obj.__qualname__}), not a graph or a function "
                         "returning one", "graph",
                         f"point at a DynamoGraph instance (e.g. `graph = {obj.__name__}(name=..., ...)` in "
                         f"{mod_name}, then {mod_name}:graph) or at a function that returns one")
    if callable(obj) and not isinstance(obj, DynamoGraph):
        try:
            inspect.signature(obj).bind()
        except TypeError as e:          # e.g. json:loads — a function that needs arguments
            raise GraphError(f"{ref} is a function that needs arguments ({e})", "graph",
                             "point at a DynamoGraph or at a function callable with no arguments") from None
        except ValueError:              # no signature to inspect (some builtins): let the call decide
            pass
        obj = obj()
    if not isinstance(obj, DynamoGraph):
        raise GraphError(f"{ref} is a {type(obj).__name__}, not a DynamoGraph", "graph",
                         "point at a DynamoGraph or a function returning one")
    return obj
