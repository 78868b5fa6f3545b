"""Sliding-window limits per client address: bookings (each costs a worker) and uploads (each
costs a portrait preparation or a PDF parse). The address is guard.client_address's."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from collections.abc import Callable

from .settings import RateLimit


class SlidingWindowLimiter:
    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Record one use by `key`; return 0 if allowed, else the seconds until it would be."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] >= self.limit.window_s:
                hits.popleft()
            if len(hits) >= self.limit.count:
                return self.limit.window_s - (now - hits[0])
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle clients so memory stays bounded
                for k in [k for k, v in self._hits.items() if not v]:
                    del self._hits[k]
            return 0.0


def client_key(address: str) -> str:
    """What one client is counted as: its IPv4 address, or its IPv6 /64 (one host is given a
    whole /64 and could change address within it for every request)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
