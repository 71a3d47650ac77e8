from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from rest_framework_api_key.admin import APIKeyModelAdmin

from memadmin.memory.collections import store_names
from tenants.app_services import app_place
from tenants.jobs.models import Job
from tenants.memberships import LAST_ADMIN, managing_roles, membership_keeps_an_admin
from tenants.models import Agent, App, DataLink, EndUser, Invitation, Membership, RetentionPolicy, Tenant, TenantAPIKey


class AppInline(admin.TabularInline):
    model = App
    extra = 0
    fields = ("app_id", "name", "collection_name", "status", "is_default")


# The last-admin rule of the members page holds here too (tenants/memberships.py): Django admin is another way
# to demote or remove people, and deleting a user account removes its memberships.


class MembershipFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        tenant = self.instance
        if tenant.pk is None or not membership_keeps_an_admin(tenant=tenant, changing=None, new_role=None):
            return  # a new tenant, or one that has no admin yet: nothing to lose
        kept = [form.cleaned_data for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        if not any(data.get("role") in managing_roles() for data in kept):
            raise ValidationError(LAST_ADMIN)


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    extra = 0
    autocomplete_fields = ("user",)


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("user", "tenant", "role")

    def clean(self):
        data = super().clean()
        if self.instance.pk is None:
            return data
        before = Membership.objects.get(pk=self.instance.pk)
        stays = data.get("tenant") == before.tenant
        new_role = data.get("role") if stays else None  # moved to another tenant: gone from this one
        if not membership_keeps_an_admin(tenant=before.tenant, changing=before, new_role=new_role):
            raise ValidationError(LAST_ADMIN)
        return data


def _is_last_admin(membership: Membership) -> bool:
    return not membership_keeps_an_admin(tenant=membership.tenant, changing=membership, new_role=None)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "auto_create_apps", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name", "slug")
    inlines = [AppInline, MembershipInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is App:
            for app_form in formset.extra_forms:
                if app_form.has_changed():
                    app_place(app_form.instance)
        super().save_formset(request, form, formset, change)


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ("app_id", "tenant", "collection_name", "store", "status", "is_default")
    list_filter = ("status", "store", "tenant")
    search_fields = ("app_id", "collection_name")

    def get_readonly_fields(self, request, obj=None):
        # A new app is pinned here; an existing one changes store only by a move, which copies its data.
        return ("store",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        if not change:
            app_place(obj)
        super().save_model(request, obj, form, change)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "store":
            choices = [("", "The store with the most free memory"), *((name, name) for name in store_names())]
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
    form = MembershipForm
    list_display = ("user", "tenant", "role")
    list_filter = ("role", "tenant")

    def has_delete_permission(self, request, obj=None):
        """Also asked for the memberships a deleted user account takes with it: the last admin's account
        cannot be deleted either. Deleting the whole tenant removes its admin with it, and is allowed."""
        deleting_tenant = getattr(request.resolver_match, "url_name", "") in TENANT_DELETE_VIEWS
        if obj is not None and not deleting_tenant and _is_last_admin(obj):
            return False
        return super().has_delete_permission(request, obj)


TENANT_DELETE_VIEWS = ("tenants_tenant_delete", "tenants_tenant_changelist")  # one tenant, or a bulk action


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
