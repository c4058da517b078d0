from django.urls import path

from hub.ui import flowmap, flows

urlpatterns = [
    path("", flows.flow_list, name="flows-list"),
    path("new/", flows.flow_add, name="flows-add"),
    path("map/", flowmap.flow_map, name="flows-map"),
    path("map.json", flowmap.flow_map_data, name="flows-map-data"),
    path("spec/", flows.spec_download, name="flows-spec-export"),
    path("spec/import/", flows.spec_import_view, name="flows-spec-import"),
    path("<int:pk>/", flows.flow_detail, name="flows-detail"),
    path("<int:pk>/edit/", flows.flow_edit, name="flows-edit"),
    path("<int:pk>/pause/", flows.flow_pause_view, name="flows-pause"),
    path("<int:pk>/resume/", flows.flow_resume_view, name="flows-resume"),
    path("<int:pk>/enable/", flows.flow_enable_view, name="flows-enable"),
    path("<int:pk>/poll/", flows.flow_poll_view, name="flows-poll"),
    path("<int:pk>/delete/", flows.flow_delete_view, name="flows-delete"),
]
