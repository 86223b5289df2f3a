"""Staff browsing the API with their admin session need the same second factor.

API clients authenticate with a bearer token and are not concerned. A staff session that
owes a code (or an enrolment) gets 403 on the API, with the reason, instead of acting
with only a password behind it. Installed after django-otp's OTPMiddleware.
"""
from django.http import JsonResponse
from django.utils.translation import gettext as _

from . import pending

API_PREFIX = "/api/"


class TwoFactorApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX) and not _bearer(request):
            user = getattr(request, "user", None)
            due = pending(user) if user is not None and user.is_authenticated else None
            if due is not None:
                detail = (
                    _("Enter your two-factor code in the admin first (/admin/), then use the API with this session.")
                    if due == "verify"
                    else _("Your role requires two-factor authentication: enrol a device in the admin first (/admin/).")
                )
                return JsonResponse({"detail": detail}, status=403)
        return self.get_response(request)


def _bearer(request):
    return request.META.get("HTTP_AUTHORIZATION", "").strip().lower().startswith("bearer ")
