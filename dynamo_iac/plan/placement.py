"""Optimal packing of worker replicas onto GPU nodes.

A node holds items (one worker replica each) of g GPUs that request f units of the node's fabric
resource (EFA interfaces, RDMA networks …), up to the node's GPU count and fabric capacity: a
two-dimensional bin-packing problem with few item types (the distinct (GPUs, fabric) pairs). Items of
different groups never share a node when the fabric forbids same-node KV transfer, so the problem
splits into independent packings, each solved by `solve`:
  - first-fit decreasing gives an upper bound; when it meets the lower bound it is optimal;
  - otherwise a branch and bound over node fill patterns: each node takes the largest remaining
    item and is maximal (no remaining item still fits — never worse), states are count vectors
    memoised on the nodes used to reach them, and a branch is cut when nodes used + the lower
    bound of what remains cannot beat the best packing found;
  - the search has a node budget; when it runs out the best packing found is returned with
    `optimal=False` and the caller says so in the plan.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil, inf

Item = tuple                              # (GPUs, label) or (GPUs, label, fabric units)
SEARCH_BUDGET = 200_000                   # branch-and-bound expansions per packing


def _units(items: list[Item], demand: dict[int, int] | None) -> list[tuple[int, int]]:
    """(GPUs, fabric units) of each item: its own third field, else `demand` by GPU count."""
    demand = demand or {}
    return [(it[0], it[2] if len(it) > 2 else demand.get(it[0], 0)) for it in items]


@dataclass(frozen=True)
class Packing:
    bins: list[list[Item]]
    lower_bound: int
    optimal: bool                          # proven optimal (meets the bound or the search finished)


class _Problem:
    """Item types ((GPUs, fabric) pairs, largest first), and the node capacities."""

    def __init__(self, units: list[tuple[int, int]], cap: int, fcap: int | None):
        self.cap = cap
        self.fcap = fcap if fcap else inf
        self.types = tuple(sorted(set(units), key=lambda t: (-t[0], -t[1])))
        self.sizes = tuple(s for s, _ in self.types)
        self.dem = tuple(d for _, d in self.types)
        self.counts = tuple(units.count(t) for t in self.types)
        for s, d in zip(self.sizes, self.dem):
            if s > cap or d > self.fcap:
                raise ValueError(f"an item of {s} GPUs / {d} fabric units exceeds a node ({cap} / {fcap})")
        half = cap / 2
        self.ks = sorted({0} | {s for s in self.sizes if s <= half})

    def fabric_binds(self) -> bool:
        return any(d * self.cap > self.fcap * s for s, d in zip(self.sizes, self.dem))

    def bound(self, rem: tuple[int, ...]) -> int:
        """max of: GPUs ÷ node, fabric ÷ node, Martello–Toth L2 on GPUs, items needing half a node's fabric."""
        cap, fcap, sizes = self.cap, self.fcap, self.sizes
        tot = sum(r * s for r, s in zip(rem, sizes))
        best = -(-tot // cap)
        if fcap != inf:
            best = max(best, ceil(sum(r * d for r, d in zip(rem, self.dem)) / fcap),
                       sum(r for r, d in zip(rem, self.dem) if d * 2 > fcap))
        half = cap / 2
        for k in self.ks:
            n12 = s2 = s3 = 0
            for r, s in zip(rem, sizes):
                if not r:
                    continue
                if s > half:
                    n12 += r
                    if s <= cap - k:
                        s2 += r * s
                elif s >= k:
                    s3 += r * s
            n2 = sum(r for r, s in zip(rem, sizes) if half < s <= cap - k)
            best = max(best, n12 + max(0, -(-(s3 - (n2 * cap - s2)) // cap)))
        return best

    def patterns(self) -> list[list[tuple[tuple[int, ...], int, float]]]:
        """Node fill patterns (count vector, GPUs, fabric) grouped by their first (largest) type,
        fullest first."""
        n = len(self.sizes)
        out: list[tuple[tuple[int, ...], int, float]] = []

        def rec(i: int, vec: list[int], g: int, f: float) -> None:
            if i == n:
                if g:
                    out.append((tuple(vec), g, f))
                return
            s, d = self.sizes[i], self.dem[i]
            k = 0
            while k <= self.counts[i] and g + k * s <= self.cap and f + k * d <= self.fcap:
                vec.append(k)
                rec(i + 1, vec, g + k * s, f + k * d)
                vec.pop()
                k += 1

        rec(0, [], 0, 0)
        groups: list[list[tuple[tuple[int, ...], int, float]]] = [[] for _ in range(n)]
        for p in out:
            groups[next(i for i, c in enumerate(p[0]) if c)].append(p)
        for grp in groups:
            grp.sort(key=lambda p: (-p[1], [-c for c in p[0]]))
        return groups


def ffd(items: list[Item], cap: int, demand: dict[int, int] | None = None, fcap: int | None = None) -> list[list[Item]]:
    """First-fit decreasing in both dimensions; stable (ties keep the input order)."""
    flim = fcap if fcap else inf
    bins: list[list[Item]] = []
    free: list[list[float]] = []
    for item, (size, d) in sorted(zip(items, _units(items, demand)), key=lambda x: (-x[1][0], -x[1][1])):
        for i, (g, f) in enumerate(free):
            if g >= size and f >= d:
                bins[i].append(item)
                free[i] = [g - size, f - d]
                break
        else:
            bins.append([item])
            free.append([cap - size, flim - d])
    return bins


def _divisible(sizes) -> bool:
    s = sorted(set(sizes))
    return all(b % a == 0 for a, b in zip(s, s[1:]))


def solve(items: list[Item], cap: int, demand: dict[int, int] | None = None, fcap: int | None = None,
          budget: int = SEARCH_BUDGET) -> Packing:
    """Fewest nodes of `cap` GPUs (and `fcap` fabric units; None = unbounded) holding `items`."""
    if not items:
        return Packing([], 0, True)
    units = _units(items, demand)
    pb = _Problem(units, cap, fcap)
    first_fit = ffd(items, cap, demand, fcap)
    root = pb.bound(pb.counts)
    # divisible sizes (1, 2, 4, 8 …) without a binding fabric: FFD is optimal (Coffman, Garey, Johnson 1987)
    if len(first_fit) == root or (_divisible(pb.sizes) and not pb.fabric_binds()):
        return Packing(first_fit, root, True)
    groups = pb.patterns()
    sizes, dem, capg, capf = pb.sizes, pb.dem, pb.cap, pb.fcap
    n = len(sizes)

    def candidates(rem: tuple[int, ...]):
        first = next(i for i, c in enumerate(rem) if c)
        for vec, g, f in groups[first]:
            if any(v > r for v, r in zip(vec, rem)):
                continue
            # maximal: no remaining item still fits this node (adding it never hurts)
            if any(rem[j] > vec[j] and sizes[j] <= capg - g and dem[j] <= capf - f for j in range(n)):
                continue
            yield vec

    best_n, best_path = len(first_fit), None
    seen: dict[tuple[int, ...], int] = {}
    path: list[tuple[int, ...]] = []
    stack = [(pb.counts, candidates(pb.counts))]
    spent, aborted = 0, False
    while stack:
        here, gen = stack[-1]
        vec = next(gen, None)
        if vec is None:
            stack.pop()
            if path:
                path.pop()
            continue
        spent += 1
        if spent > budget:
            aborted = True
            break
        rem = tuple(r - v for r, v in zip(here, vec))
        used = len(path) + 1
        if not any(rem):
            if used < best_n:
                best_n, best_path = used, path + [vec]
                if best_n == root:
                    break
            continue
        if used + pb.bound(rem) >= best_n or seen.get(rem, inf) <= used:
            continue
        seen[rem] = used
        path.append(vec)
        stack.append((rem, candidates(rem)))
    if best_path is None:
        return Packing(first_fit, root, not aborted or len(first_fit) == root)
    by_type = {t: [it for it, u in zip(items, units) if u == t] for t in pb.types}
    bins = [[by_type[pb.types[i]].pop(0) for i, c in enumerate(vec) for _ in range(c)] for vec in best_path]
    return Packing(bins, root, not aborted or best_n == root)


def lower_bound(items: list[Item], cap: int, demand: dict[int, int] | None = None, fcap: int | None = None) -> int:
    if not items:
        return 0
    pb = _Problem(_units(items, demand), cap, fcap)
    return pb.bound(pb.counts)
