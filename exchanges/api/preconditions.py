"""ETags on detail responses, `If-None-Match` (304) and `If-Match` (412) on writes.

The check and the write happen in one transaction with the row locked, so of two
PATCHes sent with the same ETag, exactly one wins and the other gets 412.
"""
import hashlib

from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException


class PreconditionFailed(APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = _("The object changed since you read it (stale If-Match). Read it again and retry.")
    default_code = "precondition_failed"


def etag_for(instance):
    return etag(instance._meta.label_lower, instance.pk, instance.updated_at)


def etag(label, pk, updated_at):
    version = f"{label}:{pk}:{updated_at.isoformat()}"
    return '"' + hashlib.sha256(version.encode()).hexdigest()[:32] + '"'


def _tags(header):
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def check_if_match(request, instance):
    header = request.headers.get("If-Match")
    if header is None:
        return
    tags = _tags(header)
    if "*" not in tags and etag_for(instance) not in tags:
        raise PreconditionFailed()


def not_modified(request, instance):
    return matches_none(request.headers.get("If-None-Match"), etag_for(instance))


def matches_none(header, tag):
    """Whether an `If-None-Match` header names this ETag (so the answer is 304)."""
    return header is not None and ("*" in _tags(header) or tag in _tags(header))
