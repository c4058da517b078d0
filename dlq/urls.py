from django.urls import path

from dlq import views

urlpatterns = [
    path("", views.inbox, name="dlq-inbox"),
    path("bulk/", views.bulk, name="dlq-bulk"),
    path("<int:pk>/", views.detail, name="dlq-detail"),
    path("<int:pk>/replay/", views.replay, name="dlq-replay"),
    path("<int:pk>/fix/", views.fix_and_replay, name="dlq-fix"),
    path("<int:pk>/discard/", views.discard, name="dlq-discard"),
]
