from django.urls import path

from hub.alerts import views

urlpatterns = [
    path("", views.alert_list, name="alerts-list"),
    path("<int:pk>/", views.alert_detail, name="alerts-detail"),
    path("<int:pk>/acknowledge/", views.alert_act, {"action": "acknowledge"}, name="alerts-acknowledge"),
    path("<int:pk>/mute/", views.alert_act, {"action": "mute"}, name="alerts-mute"),
    path("<int:pk>/unmute/", views.alert_act, {"action": "unmute"}, name="alerts-unmute"),
    path("rules/", views.rule_list, name="alerts-rules"),
    path("rules/new/", views.rule_add, name="alerts-rule-add"),
    path("rules/<int:pk>/", views.rule_edit, name="alerts-rule-edit"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="alerts-rule-delete"),
    path("channels/", views.channel_list, name="alerts-channels"),
    path("channels/new/<str:kind>/", views.channel_add, name="alerts-channel-add"),
    path("channels/<int:pk>/", views.channel_edit, name="alerts-channel-edit"),
    path("channels/<int:pk>/delete/", views.channel_remove, name="alerts-channel-delete"),
    path("channels/<int:pk>/test/", views.channel_send_test, name="alerts-channel-test"),
]
