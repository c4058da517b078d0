from django.urls import path

from hub.ui import mapper, models

urlpatterns = [
    path("", models.model_list, name="mappings-models"),
    path("new/", models.model_add, name="mappings-model-add"),
    path("<int:pk>/", models.model_detail, name="mappings-model-detail"),
    path("<int:pk>/edit/", models.model_edit, name="mappings-model-edit"),
    path("<int:pk>/sample/", models.model_sample, name="mappings-model-sample"),
    path("<int:pk>/delete/", models.model_delete, name="mappings-model-delete"),
    path("<int:pk>/fields/add/", models.field_add_view, name="mappings-field-add"),
    path("fields/<int:pk>/", models.field_update_view, name="mappings-field-update"),
    path("fields/<int:pk>/remove/", models.field_remove_view, name="mappings-field-remove"),
    path("mappings/<int:pk>/", mapper.mapper, name="mappings-mapper"),
    path("mappings/<int:pk>/preview/", mapper.preview, name="mappings-preview"),
    path("mappings/<int:pk>/save/", mapper.save, name="mappings-save"),
    path("mappings/<int:pk>/history/", mapper.history, name="mappings-history"),
    path("mappings/<int:pk>/versions/<int:number>/restore/", mapper.restore, name="mappings-restore"),
]
