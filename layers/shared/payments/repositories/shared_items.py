"""Items that every request of a route reads alike, kept in the execution environment for a bounded time.

Apps, coins and rates (the swap), the ticket catalogue and a subcategory's listing page (payment progress)
are read by every request of their route: read from DynamoDB each time, their partitions would cap the
route at one partition's throughput (3,000 read units a second) for the whole user base. A repository
keeps what it read here for `ttl_seconds` (at most 60, `SHARED_ITEMS_CACHE_SECONDS`; 0 turns it off) and
asks DynamoDB again only once that has passed, within the request's own one read, so the round trips of a
request stay what they were. Only found items are kept: a missing app or ticket catalogue is asked for
again by the next request, so something created is seen at once. docs/data-model.md says what staleness
means for each item.

Every cache of the process is listed so that all can be emptied at once: after a SnapStart restore (the
snapshot's entries are as old as the snapshot) and when the local stack's data is reloaded.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

# Default bound of an entry's age, and the largest one allowed (SPEC §7: at most 60 s).
DEFAULT_TTL_SECONDS = 30.0
MAX_TTL_SECONDS = 60.0
# Apps, coins, rates and listing pages in use are few; past this, the least recently used entry goes.
_MAX_ENTRIES = 4096

_every_cache: weakref.WeakSet[SharedItemCache] = weakref.WeakSet()


class SharedItemCache:
    """Entries by key, each usable for `ttl_seconds` after it was read from DynamoDB (thread-safe)."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"a shared item may be kept 0 to {MAX_TTL_SECONDS:g} s, not {ttl_seconds}")
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        _every_cache.add(self)

    def get(self, key: Hashable) -> Any | None:
        """The entry under `key` if it was read less than `ttl_seconds` ago, else None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            read_at, value = entry
            if self._clock() - read_at >= self.ttl_seconds:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any, read_at: float | None = None) -> None:
        """Keep `value` (as read from DynamoDB at `read_at`, by default now); nothing is kept when the cache is off."""
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() if read_at is None else read_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > _MAX_ENTRIES:
                self._entries.popitem(last=False)

    def now(self) -> float:
        """The cache's clock: take it before a read whose answer is then `put` with it."""
        return self._clock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def forget_all() -> None:
    """Empty every cache of this process: the next request of each environment reads its shared items again."""
    for cache in list(_every_cache):
        cache.clear()
