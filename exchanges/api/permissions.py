"""Who may call the API at all, and for staff which kind of record: `exchanges.policy`
answers both; this class only tells it what the request is.

API clients pass here (a read-only one only for reads); what they may do to each object
is asked of the policy by the views and services. Staff logins need the model
permission for the view's kind of record and the request's action (view, add, change,
delete), as in the admin.
"""
from django.utils.translation import gettext_lazy as _
from rest_framework import permissions

from .. import policy

#: HTTP method -> the action a staff login needs the permission for.
METHOD_ACTIONS = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "delete"}  # fmt: skip


class PolicyPermission(permissions.BasePermission):
    message = _("Only staff and API clients may use the API.")

    def has_permission(self, request, view):
        principal = request.user
        if policy.is_client(principal):
            if principal.read_only and request.method not in permissions.SAFE_METHODS:
                self.message = _("This API client is read-only.")
                return False
            return True
        if not policy.is_staff(principal):
            return False
        model = getattr(view, "policy_model", None)
        if model is not None:
            action = getattr(view, "policy_actions", {}).get(getattr(view, "action", None))
            policy.require(principal, action or METHOD_ACTIONS.get(request.method, "view"), model)
        return True
