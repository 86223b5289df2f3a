"""Top-level routes: the admin, the API, the health check."""
from django.contrib import admin
from django.urls import include, path, re_path

from exchanges.api.views import healthz, not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("tracker.api.urls")),
    path("api/v1/", include("exchanges.api.urls")),
    path("healthz", healthz, name="healthz"),
    re_path(r"^api/", not_found),
]

admin.site.site_header = "Exchange tracker"
admin.site.site_title = "Exchange tracker"
admin.site.index_title = "Negotiations, detainee groups and what needs attention"
