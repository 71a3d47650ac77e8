"""Sign in / out (django.contrib.auth, throttled by django-axes) and the tenant picker."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from tenants.models import Membership, Tenant

login = auth_views.LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True)
logout = auth_views.LogoutView.as_view()  # POST-only since Django 5: a link cannot sign anyone out


@login_required
@require_GET
def home(request) -> HttpResponse:
    """Only tenants the viewer belongs to; with exactly one there is nothing to pick."""
    memberships = list(Membership.objects.filter(user=request.user).select_related("tenant").order_by("tenant__name"))
    if len(memberships) == 1:
        return redirect("overview", tenant_slug=memberships[0].tenant.slug)
    context = {"memberships": memberships}
    if request.user.is_superuser and not memberships:
        # A platform superuser runs tenants from Django admin; the dashboards are for their members (being a
        # superuser grants no membership, so no memory is visible from here).
        context["tenants"] = Tenant.objects.annotate(
            app_count=Count("apps", distinct=True),
            member_count=Count("memberships", distinct=True),
        ).order_by("name")
    return render(request, "tenants/picker.html", context)
