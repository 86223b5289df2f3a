"""Refuse oversized request bodies before anything reads them.

DRF parses from the request stream, which skips Django's DATA_UPLOAD_MAX_MEMORY_SIZE
check on `request.body`; this applies the same limit to every request up front.
"""
from django.conf import settings
from django.http import JsonResponse
from django.utils.translation import gettext as _


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": _("Invalid Content-Length header.")}, status=400)
        if limit is not None and length > limit:
            return JsonResponse(
                {"detail": _("The request body is too large (limit %(limit)d bytes).") % {"limit": limit}},
                status=413,
            )
        return self.get_response(request)
