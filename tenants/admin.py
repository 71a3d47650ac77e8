from django import forms
from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin

from memadmin.memory import store
from tenants.models import (
    Agent,
    App,
    DataLink,
    EndUser,
    Invitation,
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
    list_display = ("app_id", "tenant", "collection_name", "store", "status", "is_default")
    list_filter = ("status", "store", "tenant")
    search_fields = ("app_id", "collection_name")

    def get_readonly_fields(self, request, obj=None):
        # A new app is pinned here; an existing one changes store only by a move, which copies its data.
        return ("store",) if obj is not None else ()

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "store":
            choices = [("", "The store with the most free memory"), *((name, name) for name in store.store_names())]
            return forms.ChoiceField(choices=choices, required=False, help_text=db_field.help_text)
        return super().formfield_for_dbfield(db_field, request, **kwargs)


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


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Read-only: invitations are made and withdrawn from the members page, where they are audited."""

    list_display = ("email", "tenant", "role", "invited_by", "sent_at", "expires_at", "accepted_at", "cancelled_at")
    list_filter = ("tenant", "role")
    search_fields = ("email",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
