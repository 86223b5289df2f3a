from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash="/?")
router.register("flags", views.FlagViewSet, basename="flag")
router.register("webhooks", views.WebhookSubscriptionViewSet, basename="webhook")

urlpatterns = router.urls
