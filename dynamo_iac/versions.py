"""Reader of dynamo_iac/data/versions.yaml: one Dynamo release drives every version."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


from . import yamlio
from .errors import ConfigError


@lru_cache(maxsize=1)
def _table() -> dict:
    return yamlio.load(resources.files("dynamo_iac.data").joinpath("versions.yaml").read_text())


@dataclass(frozen=True)
class ChartPin:
    name: str
    repo: str
    chart: str
    version: str
    namespace: str


@dataclass(frozen=True)
class Release:
    version: str
    chart_version: str
    dgd_api: tuple[str, ...]
    _images: dict
    _efa_images: dict
    registry: str

    def image(self, kind: str, efa: bool = False) -> str:
        """Full image reference for kind in vllm|sglang|trtllm|frontend|planner|operator."""
        table = self._efa_images if efa and kind in self._efa_images else self._images
        if kind not in table:
            raise ConfigError(f"no image for {kind!r} in Dynamo {self.version}", "images",
                              f"set the image explicitly or add it to versions.yaml")
        return f"{self.registry}/{table[kind]}"

    def has_efa_image(self, kind: str) -> bool:
        return kind in self._efa_images


def default_version() -> str:
    return str(_table()["default"])


def known_versions() -> list[str]:
    return sorted(_table()["releases"])


def release(version: str | None = None) -> Release:
    t = _table()
    v = version or str(t["default"])
    r = t["releases"].get(v)
    if r is None:
        raise ConfigError(f"unknown Dynamo version {v!r}", "dynamo_version",
                          f"use one of {', '.join(known_versions())} or add it to dynamo_iac/data/versions.yaml")
    return Release(v, str(r["chart"]), tuple(r["dgd_api"]), dict(r["images"]),
                   dict(r.get("efa_images") or {}), t["registry"])


def platform_chart() -> dict:
    return dict(_table()["chart"])


def _chart_entry(name: str) -> dict:
    c = _table()["charts"].get(name)
    if c is None:
        raise ConfigError(f"no pinned chart {name!r}", "charts", "add it to dynamo_iac/data/versions.yaml")
    return c


def chart(name: str) -> ChartPin:
    c = _chart_entry(name)
    return ChartPin(name, c["repo"], c["chart"], str(c["version"]), c["namespace"])


def chart_images(name: str) -> dict[str, dict[str, str]]:
    """Component images pinned beside a chart (a chart release ships with them), key → fields,
    e.g. the NicClusterPolicy's ofedDriver of the network-operator chart; {} when none."""
    c = _chart_entry(name)
    return {k: {f: str(v) for f, v in img.items()} for k, img in (c.get("images") or {}).items()}


@dataclass(frozen=True)
class ImagePin:
    """An image of an add-on we install as plain resources (no chart), with where its pin comes from."""

    name: str
    ref: str                       # full reference: registry/repository:tag[@digest]
    source: str                    # URL of the upstream manifest or release note, at a commit


def image(name: str) -> ImagePin:
    i = (_table().get("images") or {}).get(name)
    if i is None:
        raise ConfigError(f"no pinned image {name!r}", f"images.{name}",
                          "add ref and source to dynamo_iac/data/versions.yaml")
    return ImagePin(name, str(i["ref"]), str(i["source"]))


def kubernetes_newest(cloud: str) -> tuple[str | None, str]:
    """(newest Kubernetes minor the cloud's managed service offers, its source); None: unknown."""
    entry = (_table().get("kubernetes") or {}).get(cloud) or {}
    return entry.get("newest"), str(entry.get("source") or "")
