"""Which pool each unit of workers goes to.

A worker's replicas share one pod template (one DGD component), so all of them land on one pool;
the prefill and decode workers of a disaggregated graph form one unit (they exchange KV cache and
stay in one fabric domain). Independent units may go to different pools. The assignment minimises
(GPU nodes, $/h, pools used) over every pool — $/h as (pools whose price is unknown, known $/h), so
an unknown price ranks after every known one and sums stay exact:
  - a greedy pass (largest unit first, each to the pool where it adds least) gives a first answer;
  - a depth-first branch and bound then tries every pool for every unit: each pool's packing is
    exact and adding a unit never lowers a pool's nodes, cost or use, so a partial assignment
    whose total already reaches the best one is cut;
  - packings are memoised per (pool, units); when the budget of packings runs out the best
    assignment found is returned with `proven=False`, and the plan says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

Score = tuple[int, int, float]            # (provisioned nodes, pools with an unknown price, known $/h)
Key = tuple[int, int, float, int]         # the sum of Scores, and pools used


@dataclass(frozen=True)
class Assignment:
    sets: tuple[frozenset[int], ...]      # units per pool (empty: budget spent before any fitted)
    proven: bool                          # the search finished (the minimum over all assignments)


class _Spent(Exception):
    pass


def _add(a: Key, b: Key) -> Key:
    return (a[0] + b[0], a[1] + b[1], round(a[2] + b[2], 6), a[3] + b[3])


def _sub(a: Key, b: Key) -> Key:
    return (a[0] - b[0], a[1] - b[1], round(a[2] - b[2], 6), a[3] - b[3])


def assign(n_pools: int, sizes: list[int], choices: list[list[int]],
           score: Callable[[int, frozenset[int]], Score | None], budget: int) -> Assignment | None:
    """Units 0..len(sizes)-1 (`sizes`: their GPUs, for the order) onto pools; `choices[u]`: the
    pools unit u fits alone, preferred first; `score(p, units)`: pool p holding `units` (empty:
    what the pool costs anyway), None when it cannot. None when no assignment fits; no sets
    (and proven=False) when the budget ran out before one was found."""
    memo: dict[tuple[int, frozenset[int]], Key | None] = {}
    spent, counting = 0, False                             # the greedy pass is never cut short

    def part(p: int, units: frozenset[int]) -> Key | None:
        nonlocal spent
        k = (p, units)
        if k not in memo:
            if units and counting:
                spent += 1
                if spent > budget:
                    raise _Spent
            s = score(p, units)
            memo[k] = None if s is None else (*s, 1 if units else 0)
        return memo[k]

    order = sorted(range(len(sizes)), key=lambda u: (-sizes[u], u))
    empty = [frozenset[int]() for _ in range(n_pools)]
    base: Key = (0, 0, 0.0, 0)
    for p in range(n_pools):
        e = part(p, empty[p])
        if e is None:
            return None
        base = _add(base, e)
    best: tuple[Key, tuple[frozenset[int], ...]] | None = None

    def extend(sets: list[frozenset[int]], key: Key, u: int, p: int) -> tuple[list[frozenset[int]], Key] | None:
        new = sets[p] | {u}
        got = part(p, new)
        if got is None:
            return None
        old = part(p, sets[p])
        assert old is not None
        out = list(sets)
        out[p] = new
        return out, _add(_sub(key, old), got)

    try:
        sets, key = list(empty), base                      # greedy: the first incumbent
        for u in order:
            options = [r for p in choices[u] if (r := extend(sets, key, u, p)) is not None]
            if not options:
                break
            sets, key = min(options, key=lambda r: r[1])
        else:
            best = (key, tuple(sets))

        def dfs(i: int, sets: list[frozenset[int]], key: Key) -> None:
            nonlocal best
            if best is not None and key >= best[0]:
                return                                      # nodes, cost and pools used only grow
            if i == len(order):
                best = (key, tuple(sets))
                return
            u = order[i]
            for p in choices[u]:
                r = extend(sets, key, u, p)
                if r is not None:
                    dfs(i + 1, *r)

        counting = True
        dfs(0, list(empty), base)
    except _Spent:
        return Assignment(() if best is None else best[1], False)
    return None if best is None else Assignment(best[1], True)

