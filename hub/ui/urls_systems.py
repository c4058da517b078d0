from django.urls import path

from hub.ui import systems

urlpatterns = [
    path("", systems.system_list, name="connectors-list"),
    path("new/", systems.system_add, name="connectors-add"),
    path("<int:pk>/", systems.system_detail, name="connectors-detail"),
    path("<int:pk>/edit/", systems.system_edit, name="connectors-edit"),
    path("<int:pk>/credentials/", systems.system_credentials, name="connectors-credentials"),
    path("<int:pk>/test/", systems.system_test, name="connectors-test"),
    path("<int:pk>/delete/", systems.system_remove, name="connectors-delete"),
]
