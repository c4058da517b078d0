from django.urls import path

from dlq import views

urlpatterns = [
    path("", views.inbox, name="dlq-inbox"),
    path("bulk/", views.bulk, name="dlq-bulk"),
    path("<int:pk>/", views.detail, name="dlq-detail"),
    path("<int:pk>/replay/", views.act, {"action": "replay"}, name="dlq-replay"),
    path("<int:pk>/fix/", views.act, {"action": "fix"}, name="dlq-fix"),
    path("<int:pk>/discard/", views.act, {"action": "discard"}, name="dlq-discard"),
]
