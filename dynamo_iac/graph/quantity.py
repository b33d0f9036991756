"""Kubernetes resource quantities ("16Gi", "500m", "1e3"): the graph checks them at construction,
the validator evaluates the CRDs' `quantity(...)` CEL rules with the same parser."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_SUFFIX = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
           "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
# k8s.io/apimachinery resource.Quantity: signed decimal, then a binary/decimal suffix or an exponent
QUANTITY_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))((?:[eE][+-]?\d+)|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(v: Any) -> Decimal | None:
    """The value of a quantity (int, or string in Kubernetes syntax); None when it is not one."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return Decimal(v)
    if not isinstance(v, str):
        return None
    m = QUANTITY_RE.match(v.strip())
    if not m:
        return None
    try:
        number, suffix = Decimal(m.group(1)), m.group(2) or ""
    except InvalidOperation:
        return None
    if suffix[:1] in ("e", "E"):
        return number.scaleb(int(suffix[1:]))
    return number * _SUFFIX[suffix]
