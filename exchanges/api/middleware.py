"""Request middleware: body size limit, request id and audit context."""
import re
import uuid

from django.conf import settings
from django.http import JsonResponse
from django.utils.translation import gettext as _

from .. import audit
from ..client_address import client_address


class BodySizeLimitMiddleware:
    """Refuse oversized request bodies before anything reads them.

    DRF parses from the request stream, which skips Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    check on `request.body`; this applies the same limit to every request up front.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and not request.META.get("CONTENT_LENGTH"):
            # Django reads a body up to its Content-Length: a chunked one would be read as
            # empty, and the request acted on as if nothing had been sent.
            return JsonResponse(
                {"detail": _("Send the body with a Content-Length header (chunked bodies are not accepted).")}, status=411
            )
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.content_type == "multipart/form-data" and request.path.startswith("/admin/"):
            limit = settings.TRACKER_MAX_UPLOAD_BYTES  # the admin's CSV import
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


class RequestContextMiddleware:
    """Give each request an id (`X-Request-ID`, taken from the caller when sane) and tell
    the audit trail which request and channel its entries come from."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get("X-Request-ID", "")
        request_id = given if re.fullmatch(r"[A-Za-z0-9._-]{8,64}", given) else uuid.uuid4().hex
        channel = "api" if request.path.startswith("/api/") else "admin" if request.path.startswith("/admin/") else "web"
        token = audit.set_context(request_id=request_id, channel=channel, address=client_address(request))
        try:
            response = self.get_response(request)
        finally:
            audit.reset_context(token)
        response["X-Request-ID"] = request_id
        return response
