"""Row ids that sort by age: alerts, deliveries, subscriptions and import reports."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def sortable_id(prefix: str) -> str:
    """`prefix` + a ULID: 48 bits of milliseconds then 80 random bits, so ids sort by age."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return prefix + "".join(reversed(chars))
