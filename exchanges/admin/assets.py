"""What the admin's pages make a browser download, kept small for poor connections
(`make page-weight` measures the case file):

- the JavaScript catalog (its translated strings), cached by the browser: the same for
  everyone of a language, so it is fetched once a day at most and revalidated with a 304
  after that, instead of on every page; its ETag is a digest of its content, so a new
  translation (Django's, or the project's `locale/*/djangojs.po`) is sent at once;
- no slug-making scripts on pages that prepopulate no field (`LeanMediaMixin`).
"""
import hashlib

from django import forms
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import get_language, gettext_noop
from django.views.decorators.http import etag
from django.views.i18n import JavaScriptCatalog

#: Django's ModelAdmin sends these with every page, for prepopulated fields (a slug typed
#: from a title): XRegExp alone is about 47 KB compressed, a third of the case file.
PREPOPULATE_SCRIPTS = {"admin/js/urlify.js", "admin/js/prepopulate.js", "admin/js/vendor/xregexp/xregexp.js",
                       "admin/js/vendor/xregexp/xregexp.min.js"}  # fmt: skip

#: How long a browser keeps the catalog without asking (it asks again with its ETag).
MAX_AGE = 24 * 60 * 60


#: Screen-reader labels of the admin's app list that Django's Ukrainian catalogue leaves in
#: English: marked here so that `make messages` keeps them in the project's catalogues,
#: which are read before Django's.
DJANGO_ADMIN_GAPS = (gettext_noop("Model name"), gettext_noop("Add link"), gettext_noop("Change or view list link"))

_catalog = JavaScriptCatalog.as_view(packages=["django.contrib.admin"])
#: {language: ETag}: the catalog of a language changes only with a deployment.
_etags = {}


def _catalog_etag(request):
    language = get_language()
    if language not in _etags:
        digest = hashlib.sha256(_catalog(request).content).hexdigest()[:16]
        _etags[language] = f'"admin-jsi18n-{language}-{digest}"'
    return _etags[language]


@etag(_catalog_etag)
def admin_javascript_catalog(request):
    response = _catalog(request)
    patch_cache_control(response, private=True, max_age=MAX_AGE)
    # The language comes from the switcher's cookie or the browser's header.
    patch_vary_headers(response, ["Accept-Language", "Cookie"])
    return response


class LeanMediaMixin:
    """A ModelAdmin's scripts without the prepopulated-field ones when neither it nor its
    inlines prepopulate anything (none of the tracker's admins does)."""

    @property
    def media(self):
        media = super().media
        if self.prepopulated_fields or any(inline.prepopulated_fields for inline in self.inlines):
            return media
        return forms.Media(css=media._css, js=[script for script in media._js if script not in PREPOPULATE_SCRIPTS])
