from django.urls import path

from dlq import views

urlpatterns = [
    path("", views.inbox, name="dlq-inbox"),
    path("bulk/", views.bulk, name="dlq-bulk"),
    path("bulk/all/", views.bulk_all, name="dlq-bulk-all"),
    path("jobs/<int:pk>/", views.job, name="dlq-job"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="dlq-job-cancel"),
    path("<int:pk>/", views.detail, name="dlq-detail"),
    path("<int:pk>/replay/", views.act, {"action": "replay"}, name="dlq-replay"),
    path("<int:pk>/resume-and-replay/", views.act, {"action": "resume_replay"}, name="dlq-resume-replay"),
    path("<int:pk>/fix/", views.act, {"action": "fix"}, name="dlq-fix"),
    path("<int:pk>/fix-fields/", views.act, {"action": "fix_fields"}, name="dlq-fix-fields"),
    path("<int:pk>/arrived/", views.act, {"action": "arrived"}, name="dlq-arrived"),
    path("<int:pk>/send-again/", views.act, {"action": "send_again"}, name="dlq-send-again"),
    path("<int:pk>/discard/", views.act, {"action": "discard"}, name="dlq-discard"),
]
