"""The shared cache (Redis in production) is an optimisation, never a dependency of an
answer: when it is down, rate limits and login protection let requests through with a
logged warning, cached figures are computed afresh, and nothing answers 500.

`soft(call, default, what)` runs one cache call and returns `default` if the cache does
not answer; `/healthz` reports the cache's state (`cache_state`).
"""
import logging
import time

from django.core.cache import cache

logger = logging.getLogger("exchanges.cache")

try:  # the errors a Redis cache raises when it cannot be reached
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - redis is a pinned dependency
    RedisError = OSError

CACHE_ERRORS = (RedisError, OSError)
#: Warn at most this often per kind of use, so a cache outage does not flood the logs.
WARN_EVERY_SECONDS = 60
_warned = {}


def soft(call, default, what):
    try:
        return call()
    except CACHE_ERRORS as error:
        now = time.monotonic()
        if now - _warned.get(what, -WARN_EVERY_SECONDS) >= WARN_EVERY_SECONDS:
            _warned[what] = now
            logger.warning("The cache is unavailable (%s); %s goes on without it: %s", type(error).__name__, what, error)
        return default


def cache_state():
    """'ok' when the cache answers a read, else 'unavailable'."""
    return soft(lambda: (cache.get("healthz:probe"), "ok")[1], "unavailable", "the health check")
