from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.trailing_slash = "/?"  # DRF reads the argument as a bool (always "/"); optional here
router.register("flags", views.FlagViewSet, basename="flag")
router.register("webhooks", views.WebhookSubscriptionViewSet, basename="webhook")

urlpatterns = router.urls
