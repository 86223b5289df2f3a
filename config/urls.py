"""Top-level routes: / to the admin, the admin, the language switcher, the API, the health check."""
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from exchanges.admin.assets import admin_javascript_catalog
from exchanges.api.views import healthz, not_found, readyz

urlpatterns = [
    # The site's address alone leads staff to their daily page.
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    # The admin's JavaScript catalog, cached by browsers (the admin's own is not): the
    # admin's pages ask for it at this address ("admin:jsi18n").
    path("admin/jsi18n/", admin_javascript_catalog),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("tracker.api.urls")),
    path("api/v1/", include("exchanges.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    re_path(r"^api/", not_found),
]

# Translated error pages carrying the request id (also logged).
handler404 = "exchanges.admin.errors.page_not_found"
handler500 = "exchanges.admin.errors.server_error"
