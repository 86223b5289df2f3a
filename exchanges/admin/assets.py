"""The admin's JavaScript catalog (its translated strings), cached by the browser: the
same for everyone of a language and a Django version, so it is fetched once a day at
most and revalidated with a 304 after that, instead of on every page."""
import django
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import get_language
from django.views.decorators.http import etag
from django.views.i18n import JavaScriptCatalog

#: How long a browser keeps the catalog without asking (it asks again with its ETag).
MAX_AGE = 24 * 60 * 60


def _catalog_etag(request):
    return f'"admin-jsi18n-{get_language()}-{django.get_version()}"'


@etag(_catalog_etag)
def admin_javascript_catalog(request):
    response = JavaScriptCatalog.as_view(packages=["django.contrib.admin"])(request)
    patch_cache_control(response, private=True, max_age=MAX_AGE)
    # The language comes from the switcher's cookie or the browser's header.
    patch_vary_headers(response, ["Accept-Language", "Cookie"])
    return response
