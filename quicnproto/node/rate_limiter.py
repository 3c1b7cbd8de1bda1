"""Token-bucket rate limiting keyed by anything hashable (VALIDATION SRV-AU-02, SRV-KP-03)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """Token buckets keyed by anything hashable: ``capacity`` tokens, ``rate`` per second.

    At most ``max_keys`` buckets are kept (clients choose the keys, e.g. any 32 bytes as a
    claim target). When full, buckets that have refilled are forgotten (a new bucket is the
    same), and if that is not enough, the least recently used ones; it then has a quarter of
    ``max_keys`` free, so the cost of the sweep is spread over that many new keys.
    """

    MAX_KEYS = 100_000

    def __init__(
        self,
        capacity: float,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.capacity = capacity
        self.rate = rate
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[Any, _Bucket] = {}  # least recently used first

    def __len__(self) -> int:
        return len(self._buckets)

    def try_take(self, key: Any, amount: float = 1.0) -> bool:
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._make_room(now)
            bucket = _Bucket(self.capacity, now)
        else:
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        self._buckets[key] = bucket
        if bucket.tokens < amount:
            return False
        bucket.tokens -= amount
        return True

    def _make_room(self, now: float) -> None:
        for key in [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.stamp) * self.rate >= self.capacity
        ]:
            del self._buckets[key]
        keep = self.max_keys - max(1, self.max_keys // 4)
        while len(self._buckets) > keep:
            del self._buckets[next(iter(self._buckets))]
