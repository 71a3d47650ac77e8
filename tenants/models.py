"""Tenants, their apps, people and keys; plus the links, invitations and retention policies that hang off them.
Jobs and webhooks keep their models in their packages (tenants/jobs/models.py, tenants/webhooks/models.py).

The audit log and legal holds belong to the memory service (memadmin/memory/models.py)."""

import hashlib
import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager

from memadmin.memory import capabilities
from memadmin.memory.collections import DEFAULT_STORE, store_names
from memadmin.memory.models import TenantQuerySet
from memadmin.memory.scope import AppRef
from tenants.status_flags import status_flag
from tenants.validators import validate_app_id, validate_collection_name, validate_entity_id

_SAFE = re.compile(r"[^a-z0-9]+")
CUSTOM_INSTRUCTIONS_MAX = 4000


class Role(models.TextChoices):
    # What each role may do is in memadmin/memory/capabilities.py, the one table.
    ADMIN = capabilities.ADMIN, "Admin"
    SUPPORT = capabilities.SUPPORT, "Support"
    VIEWER = capabilities.VIEWER, "Viewer"


class Tenant(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True)
    auto_create_apps = models.BooleanField(
        default=True, help_text="API writes naming an unknown app_id create that app."
    )
    # Mem0's project-level custom_instructions: handed to the LLM that extracts facts on infer=true adds
    # (Memory.add(prompt=...)); set with client.project.update(custom_instructions=...).
    custom_instructions = models.TextField(blank=True, default="", max_length=CUSTOM_INSTRUCTIONS_MAX)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def default_collection_name(tenant_slug: str, app_id: str) -> str:
    # Slugs alone could collide ("a-b"+"c" vs "a"+"b-c"): a short digest of the pair keeps it unique.
    digest = hashlib.sha1(f"{tenant_slug}\x1f{app_id}".encode()).hexdigest()[:8]
    readable = _SAFE.sub("_", f"{tenant_slug}_{app_id}".lower()).strip("_")[:60]
    return f"ma_{readable}_{digest}"


class App(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FROZEN = "frozen", "Frozen (offboarding scheduled)"
        MOVING = "moving", "Moving to another memory store"
        OFFBOARDED = "offboarded", "Offboarded"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="apps")
    app_id = models.CharField(max_length=128, validators=[validate_entity_id])
    name = models.CharField(max_length=200, blank=True)
    collection_name = models.CharField(
        max_length=100,
        unique=True,
        blank=True,
        validators=[validate_collection_name],
        help_text="The Valkey index / Mem0 collection. Leave blank to derive one; set it to register an "
        "existing Mem0 collection.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    store = models.CharField(
        max_length=32,
        blank=True,
        help_text="The memory store (Valkey server) holding this app: default, or a name from MEMADMIN_STORES. "
        "Leave blank on a new app to place it on the store with the most free memory; move an existing app "
        "with its page's Move action or manage.py move_app, never by editing this.",
    )
    is_default = models.BooleanField(default=False, help_text="Receives API writes that name no app_id.")
    paused_at = models.DateTimeField(null=True, blank=True)  # API writes answer 423 meanwhile (tenants/pausing.py)
    paused_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["app_id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "app_id"], name="unique_app_per_tenant")]

    def __str__(self):
        return f"{self.tenant.slug}/{self.app_id}"

    def save(self, *args, **kwargs):
        if not self.collection_name:
            self.collection_name = default_collection_name(self.tenant.slug, self.app_id)
        # No store chosen here: choosing one asks every store (network I/O), which app_create does.
        super().save(*args, **kwargs)

    is_active = status_flag("status", Status.ACTIVE)
    is_frozen = status_flag("status", Status.FROZEN)
    is_moving = status_flag("status", Status.MOVING)
    is_offboarded = status_flag("status", Status.OFFBOARDED)
    is_paused = property(lambda self: self.paused_at is not None)

    def app_ref(self) -> AppRef | None:
        """The app as the memory service sees it; an offboarded app is in no scope."""
        if self.status == self.Status.OFFBOARDED:
            return None
        return AppRef(
            pk=self.pk,
            app_id=self.app_id,
            collection=self.collection_name,
            writable=self.status == self.Status.ACTIVE,
            store=self.store or DEFAULT_STORE,
            moving=self.status == self.Status.MOVING,
            paused=self.is_paused,
        )

    def clean(self):
        # The app_id alphabet (slug-like, so every URL naming an app reverses) is checked here rather than
        # as a field validator so apps stored before it existed still load; Django admin calls clean().
        super().clean()
        validate_app_id(self.app_id)
        if self.store and self.store not in store_names():
            raise ValidationError(
                {"store": f"No memory store is called {self.store!r}: default, or one of MEMADMIN_STORES."}
            )


class Agent(models.Model):
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="agents")
    agent_id = models.CharField(max_length=128, validators=[validate_entity_id])
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agent_id"]
        constraints = [models.UniqueConstraint(fields=["app", "agent_id"], name="unique_agent_per_app")]

    def __str__(self):
        return self.agent_id


class EndUser(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="end_users")
    user_id = models.CharField(max_length=128, validators=[validate_entity_id])
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    # Set when all their memories were erased (verified); cleared by their next write. Erased people leave
    # the "Recently seen" list, whose rows would otherwise open "no memories" pages.
    erased_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["user_id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "user_id"], name="unique_end_user_per_tenant")]

    def __str__(self):
        return self.user_id


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="unique_membership")]

    def __str__(self):
        return f"{self.user} @ {self.tenant} ({self.role})"


class TenantAPIKeyManager(APIKeyManager):
    def get_usable_keys(self):
        # Every API request reads the key's tenant next (its scope): in the same query.
        return super().get_usable_keys().select_related("tenant")

    def for_tenant(self, tenant):
        return self.get_queryset().filter(tenant_id=getattr(tenant, "pk", tenant))


class TenantAPIKey(AbstractAPIKey):
    """An app server's key: hashed at rest, shown once, scoped to one tenant (and optionally some apps)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    apps = models.ManyToManyField(App, blank=True, help_text="Empty = every app of the tenant.")
    may_offboard = models.BooleanField(
        default=True,
        help_text="delete_all(app_id=...) with this key offboards that app (grace period, receipt), as on the Mem0 "
        "Platform. Keys restricted to some apps never may.",
    )
    read_only = models.BooleanField(
        default=False, help_text="Searches, gets, lists and exports; every write or deletion with it is refused (403)."
    )
    last_used = models.DateTimeField(null=True, blank=True)

    objects = TenantAPIKeyManager()

    def scope_apps(self) -> list[App]:
        """The apps this key reaches: the ones it is bound to, else every app of its tenant. A binding to
        another tenant's app reaches nothing (and still restricts).

        Every API request asks, so it is one query, written out: the ORM spends ~0.5 ms compiling the
        same query with an Exists annotation, more than the database takes to answer it."""
        app, links = App._meta, TenantAPIKey.apps.through._meta
        pk, tenant, app_id = app.pk.column, app.get_field("tenant").column, app.get_field("app_id").column
        key_col, app_col = links.get_field("tenantapikey").column, links.get_field("app").column
        bound = f"SELECT {app_col} FROM {links.db_table} WHERE {key_col} = %s"
        sql = (
            f"SELECT a.*, a.{pk} IN ({bound}) AS bound_to_key FROM {app.db_table} a"
            f" WHERE a.{tenant} = %s OR a.{pk} IN ({bound}) ORDER BY a.{app_id}"
        )
        apps = list(App.objects.raw(sql, [self.pk, self.tenant_id, self.pk]))
        if any(a.bound_to_key for a in apps):
            return [a for a in apps if a.bound_to_key and a.tenant_id == self.tenant_id]
        return apps

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        constraints = [
            # Audit events name a key by its name (key:<name>): two live keys with one name would be one actor.
            # A revoked key frees its name, so a rotated key can keep it.
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=models.Q(revoked=False),
                name="apikey_name_unique_per_tenant",
                violation_error_message="An active key with this name already exists.",
            ),
        ]


class DataLink(models.Model):
    """A "your data" link: the URL holds a random token, the row its SHA-256 (looked up, revocable)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="data_links")
    user_id = models.CharField(max_length=128, validators=[validate_entity_id])
    # Null (not "": several rows) for links of the old signed format: nothing hashes to it, so they read
    # as "not valid".
    token_hash = models.CharField(max_length=64, unique=True, null=True, editable=False)  # noqa: DJ001 - unique
    # The issuer's apps at issue time: an app-restricted key cannot hand out a wider link, and an app
    # created later is not silently added to a link already sent.
    apps = models.ManyToManyField(App, blank=True, related_name="+")
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    # When the person last opened it (to the minute: one write per minute of use at most).
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"link for {self.user_id} until {self.expires_at:%Y-%m-%d %H:%M}"

    def state(self, now) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"


class RetentionPolicy(models.Model):
    app = models.OneToOneField(App, on_delete=models.CASCADE, related_name="retention")
    max_age_days = models.PositiveIntegerField(null=True, blank=True)
    idle_run_days = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    last_swept_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"retention of {self.app}"


class Invitation(models.Model):
    """An admin's offer of a role in a tenant, sent by e-mail; it becomes a membership only when the
    person opens the link and accepts. The link's token is random; only its SHA-256 is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField()
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"invitation of {self.email} to {self.tenant} ({self.role})"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.cancelled_at is None


# Django finds an app's models by importing its models module: Job and the webhooks' models live in their own
# packages (tenants/jobs/models.py, tenants/webhooks/models.py) and are imported here so that they register with
# the tenants app when it loads. At the end, so that nothing above depends on them; import them from their homes.
import tenants.jobs.models  # noqa: E402, F401
import tenants.webhooks.models  # noqa: E402, F401
