"""java.util.HashMap<String, String> iteration order, the order the SDK sends its headers in.

Needed to speak VXP as the SDK does (to an upstream axis, and in tests that imitate the
SDK). Capacity 16, doubled while more than 3/4 full; bucket = (h ^ h >>> 16) & (cap - 1)
with h = String.hashCode(); within a bucket, insertion order.
"""

from __future__ import annotations

from collections.abc import Iterable


def java_string_hash(text: str) -> int:
    """String.hashCode() over UTF-16 code units, as an unsigned 32-bit number."""
    value = 0
    units = text.encode("utf-16-be")
    for index in range(0, len(units), 2):
        value = (31 * value + int.from_bytes(units[index : index + 2], "big")) & 0xFFFFFFFF
    return value


def hashmap_order(keys: Iterable[str]) -> list[str]:
    """The iteration order of a HashMap into which ``keys`` were put in this order."""
    inserted = list(dict.fromkeys(keys))
    capacity = 16
    while len(inserted) > capacity * 3 // 4:
        capacity *= 2

    def bucket(key: str) -> int:
        h = java_string_hash(key)
        return (h ^ (h >> 16)) & (capacity - 1)

    return sorted(inserted, key=lambda key: (bucket(key), inserted.index(key)))
