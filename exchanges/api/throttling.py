"""Rate limits per API client (and per staff login), answered with 429 and Retry-After.

Counts live in the default cache: Redis in production (CACHE_URL), so every gunicorn
worker shares them.
"""
from rest_framework.throttling import SimpleRateThrottle

from ..models import ApiClient


class PrincipalRateThrottle(SimpleRateThrottle):
    scope = "api_client"

    def get_cache_key(self, request, view):
        principal = request.user
        if isinstance(principal, ApiClient):
            return self.cache_format % {"scope": self.scope, "ident": f"client:{principal.pk}"}
        if principal is not None and getattr(principal, "is_authenticated", False):
            return self.cache_format % {"scope": self.scope, "ident": f"user:{principal.pk}"}
        return self.cache_format % {"scope": self.scope, "ident": f"ip:{self.get_ident(request)}"}
