"""The caller's address, as the login protection and the access log need it.

Behind reverse proxies every request comes from the proxy's address; the client's is
the one the nearest trusted proxy put in `X-Forwarded-For`. TRACKER_TRUSTED_PROXIES says
how many proxies in front of the app append to that header (0: none, REMOTE_ADDR is the
client; 1: one nginx). Entries further left are the caller's own claims and are ignored.
"""
from django.conf import settings


def client_address(request):
    """The client's address as the request states it (not parsed here: this runs on every
    request; what writes it down checks it)."""
    proxies = getattr(settings, "TRACKER_TRUSTED_PROXIES", 0)
    address = request.META.get("REMOTE_ADDR", "")
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    return address
