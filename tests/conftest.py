"""Shared test fixtures: where ../shared is, and skips when it is absent."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference"
EXAMPLES = REFERENCE / "dynamo-examples"
CRDS = REFERENCE / "dynamo-crds"

needs_shared = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared/reference is absent")


def example_documents() -> list[tuple[str, int, dict]]:
    """Every YAML document of the upstream examples: (file name, index, document)."""
    if not EXAMPLES.is_dir():
        return []
    out = []
    for f in sorted(EXAMPLES.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(f.read_text())):
            if doc is not None:
                out.append((f.name, i, doc))
    return out


def example_dgds() -> list[tuple[str, int, dict]]:
    return [(f, i, d) for f, i, d in example_documents()
            if isinstance(d, dict) and d.get("kind") == "DynamoGraphDeployment"]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent")
    return SHARED
