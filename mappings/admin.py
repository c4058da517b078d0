from django.contrib import admin

from mappings.models import DataModel, Field, Mapping, MappingVersion


class FieldInline(admin.TabularInline):
    model = Field
    extra = 0


@admin.register(DataModel)
class DataModelAdmin(admin.ModelAdmin):
    list_display = ["name", "system", "resource_path", "id_path"]
    list_filter = ["system"]
    inlines = [FieldInline]


class MappingVersionInline(admin.TabularInline):
    model = MappingVersion
    extra = 0
    readonly_fields = ["number", "rules", "diff", "comment", "author", "created_at"]
    can_delete = False


@admin.register(Mapping)
class MappingAdmin(admin.ModelAdmin):
    list_display = ["name", "source_model", "target_model", "current_version"]
    inlines = [MappingVersionInline]
