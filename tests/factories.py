import factory
from django.contrib.auth import get_user_model

from tenants.app_services import app_create
from tenants.models import App, Membership, Role, Tenant


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class AppFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = App

    tenant = factory.SubFactory(TenantFactory)
    app_id = factory.Sequence(lambda n: f"app_{n}")
    name = factory.LazyAttribute(lambda a: a.app_id.replace("_", " ").title())

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return app_create(*args, **kwargs)  # placed on a store like every new app


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.VIEWER


def two_tenant_world():
    """Acme and Globex, two apps each (both have a concierge_app), and an admin, a support and a viewer in
    each tenant (usernames acme-admin, globex-viewer, ...). Each test folder adds what it needs on top."""
    from types import SimpleNamespace

    acme = TenantFactory(name="Acme", slug="acme")
    globex = TenantFactory(name="Globex", slug="globex")
    w = SimpleNamespace(acme=acme, globex=globex)
    w.acme_concierge = AppFactory(tenant=acme, app_id="concierge_app", is_default=True)
    w.acme_sports = AppFactory(tenant=acme, app_id="sports_portal")
    w.globex_concierge = AppFactory(tenant=globex, app_id="concierge_app", is_default=True)
    w.globex_other = AppFactory(tenant=globex, app_id="other_app")
    for tenant in (acme, globex):
        for role in ("admin", "support", "viewer"):
            user = UserFactory(username=f"{tenant.slug}-{role}")
            setattr(w, f"{tenant.slug}_{role}", MembershipFactory(user=user, tenant=tenant, role=role))
    return w
