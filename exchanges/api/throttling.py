"""Rate limits per API client (and per staff login), answered with 429 and Retry-After.

Counts live in the default cache: Redis in production (CACHE_URL), so every gunicorn
worker shares them.
"""
import math

from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import SimpleRateThrottle

from ..models import ApiClient
from ..soft_cache import soft


class PrincipalRateThrottle(SimpleRateThrottle):
    """At most `rate` requests in any sliding period, estimated from two counters: this
    fixed window's and the previous one's, weighted by how much of it the sliding period
    still covers. Each request reads the two counters and increments one atomically
    (Redis INCR), whatever the rate. DRF's own SimpleRateThrottle reads and rewrites the
    list of every request's time in the period, which costs more the higher the rate,
    and two workers writing at once lose each other's requests. A refused request is not
    counted, so retrying early does not push the limit further away."""

    scope = "api_client"

    def get_cache_key(self, request, view):
        principal = request.user
        if isinstance(principal, ApiClient):
            return self.cache_format % {"scope": self.scope, "ident": f"client:{principal.pk}"}
        if principal is not None and getattr(principal, "is_authenticated", False):
            return self.cache_format % {"scope": self.scope, "ident": f"user:{principal.pk}"}
        return self.cache_format % {"scope": self.scope, "ident": f"ip:{self.get_ident(request)}"}

    def allow_request(self, request, view):
        """Without a cache to count in, the request is let through (logged): a rate limit
        is protection, not a reason to refuse every partner while Redis restarts."""
        return soft(lambda: self._allow_request(request, view), True, "rate limiting")

    def _allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        current, previous = f"{self.key}:{window}", f"{self.key}:{window - 1}"
        counts = self.cache.get_many([current, previous])
        this, last = counts.get(current, 0), counts.get(previous, 0)
        started = window * self.duration
        overlap = 1 - (now - started) / self.duration  # of the previous window, still in the period
        if this + last * overlap >= self.num_requests:
            if this >= self.num_requests:  # until the next window, then until enough of this one slides out
                ready = started + self.duration + self.duration * (1 - self.num_requests / this)
            else:
                ready = started + self.duration * (1 - (self.num_requests - this) / last)
            self.retry_after = max(1, math.ceil(ready - now))
            return False
        self.count(current, timeout=2 * self.duration + 1)  # the previous window stays readable
        return True

    def count(self, key, timeout):
        if isinstance(self.cache, RedisCache):  # INCR and EXPIRE in one round trip
            name = self.cache.make_and_validate_key(key)
            with self.cache._cache.get_client(name, write=True).pipeline() as pipe:
                pipe.incr(name).expire(name, timeout).execute()
        elif not self.cache.add(key, 1, timeout=timeout):
            try:
                self.cache.incr(key)
            except ValueError:  # expired between the two calls
                self.cache.add(key, 1, timeout=timeout)

    def wait(self):
        return getattr(self, "retry_after", None)
