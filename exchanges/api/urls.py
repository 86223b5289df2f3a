"""Routes of /api/v1/. Trailing slashes are optional, so a POST is never redirected."""
from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from . import views
from .changes import ChangeFeedView

router = DefaultRouter()
router.trailing_slash = "/?"  # DRF reads the argument as a bool (always "/"); optional here
router.register("parties", views.PartyViewSet, basename="party")
router.register("detainee-groups", views.DetaineeGroupViewSet, basename="detaineegroup")
router.register("negotiations", views.NegotiationViewSet, basename="negotiation")

UUID = r"[0-9a-fA-F-]{36}"
LIST = {"get": "list", "post": "create"}
DETAIL = {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}


def nested(prefix, viewset, name, kwarg, detail_actions):
    return [
        re_path(rf"^{prefix}/(?P<{kwarg}>{UUID})/{name}/?$", viewset.as_view(LIST), name=f"{name}-list"),
        re_path(
            rf"^{prefix}/(?P<{kwarg}>{UUID})/{name}/(?P<pk>{UUID})/?$",
            viewset.as_view({k: v for k, v in DETAIL.items() if v in detail_actions}),
            name=f"{name}-detail",
        ),
    ]


urlpatterns = [
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^me/?$", views.me, name="me"),
    re_path(r"^changes/?$", ChangeFeedView.as_view(), name="changes"),
    *nested("detainee-groups", views.ReportedFigureViewSet, "figures", "group_pk", {"retrieve", "partial_update", "destroy"}),
    *nested("negotiations", views.StatusChangeViewSet, "status-changes", "negotiation_pk", {"retrieve"}),
    *nested(
        "negotiations",
        views.EventViewSet,
        "events",
        "negotiation_pk",
        {"retrieve", "update", "partial_update", "destroy"},
    ),
    *nested(
        "negotiations",
        views.HandoverViewSet,
        "handovers",
        "negotiation_pk",
        {"retrieve", "update", "partial_update", "destroy"},
    ),
    *router.urls,
]
