from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin

from tenants.models import (
    Agent,
    App,
    DataLink,
    EndUser,
    Job,
    Membership,
    RetentionPolicy,
    Tenant,
    TenantAPIKey,
)


class AppInline(admin.TabularInline):
    model = App
    extra = 0
    fields = ("app_id", "name", "collection_name", "status", "is_default")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "auto_create_apps", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name", "slug")
    inlines = [AppInline, MembershipInline]


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ("app_id", "tenant", "collection_name", "status", "is_default")
    list_filter = ("status", "tenant")
    search_fields = ("app_id", "collection_name")


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("agent_id", "app")
    search_fields = ("agent_id",)


@admin.register(EndUser)
class EndUserAdmin(admin.ModelAdmin):
    list_display = ("user_id", "tenant", "first_seen", "last_seen")
    list_filter = ("tenant",)
    search_fields = ("user_id",)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role")
    list_filter = ("role", "tenant")


@admin.register(TenantAPIKey)
class TenantAPIKeyAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "tenant", "last_used")
    list_filter = ("tenant",)


admin.site.register([DataLink, RetentionPolicy, Job])
