"""Error responses as API.md describes them: field errors as 400, illegal moves as 409,
never a 500 for anything a client sends."""
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from ..policy import Refused
from ..services import AlreadyRecorded, IllegalStatusChange, InUse


def django_errors(exc):
    """A Django ValidationError as DRF-style `{field: [messages]}`."""
    if hasattr(exc, "error_dict"):
        errors = {}
        for field, messages in exc.message_dict.items():
            key = api_settings.NON_FIELD_ERRORS_KEY if field == "__all__" else field
            errors.setdefault(key, []).extend(messages)
        return errors
    return {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}


def exception_handler(exc, context):
    if isinstance(exc, AlreadyRecorded):  # before the ValidationError it also is
        return Response({"detail": exc.messages[0], "existing": str(exc.existing.pk)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, IllegalStatusChange):
        return Response({"detail": str(exc), "allowed": exc.allowed}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, Refused):
        return Response({"detail": exc.detail}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, InUse):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(django_errors(exc))
    elif isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": _("The request body is too large.")}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        )
    elif isinstance(exc, IntegrityError):
        return Response(
            {"detail": _("The request conflicts with a concurrent change; nothing was written. Retry it.")},
            status=status.HTTP_409_CONFLICT,
        )
    return drf_exception_handler(exc, context)
