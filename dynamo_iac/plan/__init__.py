"""Capacity planning: place a graph's workers on GPU pools, count nodes, cost, allocation map."""
from .capacity import CapacityPlan, NodePlan, PoolPlan, plan
from .sizing import auto_pools

__all__ = ["CapacityPlan", "NodePlan", "PoolPlan", "auto_pools", "plan"]
