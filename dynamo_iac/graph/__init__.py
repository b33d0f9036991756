"""The serving graph (L2) and its import from existing DynamoGraphDeployment manifests."""
from ..errors import GraphError
from .model import (DynamoGraph, Frontend, Images, Model, ModelCache, Parallelism, Planner,
                    RawComponent, Resources, Worker)
from .load import load_graph

__all__ = ["DynamoGraph", "Frontend", "GraphError", "Images", "Model", "ModelCache", "Parallelism",
           "Planner", "RawComponent", "Resources", "Worker", "load_graph"]
