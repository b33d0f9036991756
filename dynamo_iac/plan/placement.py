"""Optimal packing of worker replicas onto GPU nodes.

Nodes hold items of g GPUs (one worker replica each) up to the node's GPU count. Items of one
group never share a node with items of another group when the fabric forbids same-node KV
transfer (EFA: prefill and decode go to separate nodes), so the problem splits into independent
bin-packing problems, each solved exactly:
  - sizes that all divide each other (1, 2, 4, 8 …): first-fit decreasing is optimal;
  - otherwise an exact search over fill patterns, memoised on the remaining counts.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import combinations_with_replacement


def _divisible(sizes: list[int]) -> bool:
    s = sorted(set(sizes))
    return all(b % a == 0 for a, b in zip(s, s[1:]))


def ffd(items: list[tuple[int, str]], cap: int) -> list[list[tuple[int, str]]]:
    """First-fit decreasing; stable (ties keep the input order)."""
    bins: list[list[tuple[int, str]]] = []
    free: list[int] = []
    for size, label in sorted(items, key=lambda x: -x[0]):
        for i, f in enumerate(free):
            if f >= size:
                bins[i].append((size, label))
                free[i] -= size
                break
        else:
            bins.append([(size, label)])
            free.append(cap - size)
    return bins


def _patterns(sizes: tuple[int, ...], cap: int) -> list[tuple[int, ...]]:
    """Maximal multisets of sizes that fit one node, as count vectors."""
    out = set()
    for n in range(1, cap + 1):
        for combo in combinations_with_replacement(range(len(sizes)), n):
            if sum(sizes[i] for i in combo) <= cap:
                vec = [0] * len(sizes)
                for i in combo:
                    vec[i] += 1
                out.add(tuple(vec))
    return sorted(out, reverse=True)


def min_bins_exact(counts: tuple[int, ...], sizes: tuple[int, ...], cap: int) -> list[tuple[int, ...]]:
    pats = _patterns(sizes, cap)

    @lru_cache(maxsize=None)
    def best(rem: tuple[int, ...]) -> tuple[int, tuple]:
        if not any(rem):
            return 0, ()
        # the largest remaining item goes into some node: branch only on patterns containing it
        first = next(i for i, c in enumerate(rem) if c)
        result = (10 ** 9, ())
        for p in pats:
            if p[first] == 0 or any(p[i] > rem[i] for i in range(len(rem))):
                continue
            nxt = tuple(r - q for r, q in zip(rem, p))
            n, seq = best(nxt)
            if n + 1 < result[0]:
                result = (n + 1, (p,) + seq)
        return result

    return list(best(counts)[1])


def pack(items: list[tuple[int, str]], cap: int, exact_limit: int = 5000) -> list[list[tuple[int, str]]]:
    """Optimal node assignment of (gpus, label) items on nodes of `cap` GPUs."""
    if not items:
        return []
    sizes = [s for s, _ in items]
    if _divisible(sizes):
        return ffd(items, cap)
    uniq = tuple(sorted(set(sizes), reverse=True))
    counts = tuple(sizes.count(s) for s in uniq)
    space = 1
    for c in counts:
        space *= c + 1
    if space > exact_limit:
        return ffd(items, cap)       # large instances: FFD (11/9·OPT + 6/9 worst case), flagged by the caller
    by_size: dict[int, list[str]] = {s: [lbl for sz, lbl in items if sz == s] for s in uniq}
    bins = []
    for p in min_bins_exact(counts, uniq, cap):
        node = []
        for i, n in enumerate(p):
            for _ in range(n):
                node.append((uniq[i], by_size[uniq[i]].pop(0)))
        bins.append(node)
    return bins


def lower_bound(items: list[tuple[int, str]], cap: int) -> int:
    total = sum(s for s, _ in items)
    big = sum(1 for s, _ in items if s * 2 > cap)
    return max(-(-total // cap), big)
