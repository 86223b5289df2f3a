"""Who may call the API: staff logins and API clients; read-only clients only read."""
from django.utils.translation import gettext_lazy as _
from rest_framework import permissions

from ..models import ApiClient


class IsStaffOrApiClient(permissions.BasePermission):
    message = _("Only staff and API clients may use the API.")

    def has_permission(self, request, view):
        principal = request.user
        if isinstance(principal, ApiClient):
            if principal.read_only and request.method not in permissions.SAFE_METHODS:
                self.message = _("This API client is read-only.")
                return False
            return True
        return bool(principal and principal.is_authenticated and principal.is_staff and principal.is_active)
