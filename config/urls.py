"""Top-level routes: the admin, the language switcher, the API, the health check."""
from django.contrib import admin
from django.urls import include, path, re_path

from exchanges.api.views import healthz, not_found, readyz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("tracker.api.urls")),
    path("api/v1/", include("exchanges.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    re_path(r"^api/", not_found),
]
