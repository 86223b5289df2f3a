"""The pages staff see when something is not there (404) or went wrong (500): in their
language, with the request id to quote, which is also in the server's log.

API paths answer JSON like the rest of the API. The 500 page renders from a plain
template (no database, no session): whatever broke must not break it too.
"""
import logging

from django.http import HttpResponseNotFound, HttpResponseServerError, JsonResponse
from django.template import loader
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from .. import audit

logger = logging.getLogger("exchanges.errors")


def _request_id(request):
    return audit.current_context().get("request_id") or ""


def _page(template, request, status_class, request_id):
    body = loader.get_template(template).render({"request_id": request_id, "language": get_language() or "en"})
    response = status_class(body)
    response["X-Request-ID"] = request_id
    return response


def page_not_found(request, exception=None):
    request_id = _request_id(request)
    logger.warning("Not found: %s %s (request id %s)", request.method, request.path, request_id)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": _("Not found."), "request_id": request_id}, status=404)
    return _page("404.html", request, HttpResponseNotFound, request_id)


def server_error(request):
    request_id = _request_id(request)
    logger.error("Server error: %s %s (request id %s)", request.method, request.path, request_id, exc_info=True)
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": _("Something went wrong on our side. Quote this request id: %(id)s.") % {"id": request_id},
             "request_id": request_id},
            status=500,
        )  # fmt: skip
    return _page("500.html", request, HttpResponseServerError, request_id)
