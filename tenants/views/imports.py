"""Bringing memories in: an import file uploaded on an app's page (the same job as manage.py import_mem0),
and an existing Mem0 OSS collection on the store registered as a new app, its index checked."""

from __future__ import annotations

from functools import wraps

from django.core.files.uploadhandler import FileUploadHandler, StopUpload, TemporaryFileUploadHandler
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from memadmin.memory.collections import (
    collection_adopt,
    collection_adopted,
    collection_claim_key,
    collection_exists,
    store_names,
    store_public_url,
)
from memadmin.memory.errors import MemoryServiceError, ValidationError
from tenants.app_services import app_create
from tenants.collection_claims import collection_claim_token, collection_claimed
from tenants.forms import ImportForm, RegisterCollectionForm
from tenants.import_files import max_bytes
from tenants.jobs.models import Job
from tenants.jobs.services import job_import
from tenants.models import App
from tenants.views.common import TenantRequest, tenant_view

RECENT = 10
FORM_SLACK = 64 * 1024  # the multipart envelope and the form's other fields around the file


class BoundedUpload(FileUploadHandler):
    """First in the chain: counts what arrives and stops the upload past the limit (the body is then read
    and dropped, never kept), so a file over MEMADMIN_IMPORT_MAX_MB never reaches the disk whole."""

    def __init__(self, request, limit: int):
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size):
        return None  # the temporary-file handler after this one keeps the file


def _active_app(request: TenantRequest, app_id: str) -> App:
    """The one scoped fetch for an import: an app of this tenant that accepts writes (404 otherwise)."""
    app = request.tenant.apps.filter(app_id=app_id).first()
    if app is None or app.status == App.Status.OFFBOARDED:
        raise Http404("No such app.")
    return app


def _import_page(
    request: TenantRequest, app: App, form: ImportForm, *, status: int = 200, error: str = ""
) -> HttpResponse:
    jobs = Job.objects.for_tenant(request.tenant).filter(app=app, kind=Job.Kind.IMPORT_APP)[:RECENT]
    return render(
        request,
        "tenants/import.html",
        {
            "app": app,
            "form": form,
            "error": error,
            "jobs": jobs,
            "max_mb": max_bytes() // (1024 * 1024),
        },
        status=status,
    )


@tenant_view
def app_import(request: TenantRequest, app_id: str) -> HttpResponse:
    return _import_page(request, _active_app(request, app_id), ImportForm())


def _too_large(request: TenantRequest, app: App) -> HttpResponse:
    return _import_page(
        request,
        app,
        ImportForm(),
        status=413,
        error=(
            f"The file is larger than {max_bytes() // (1024 * 1024)} MB, the most an import takes "
            "(MEMADMIN_IMPORT_MAX_MB). Split it, or import it with manage.py import_mem0 where the limit is higher."
        ),
    )


def _bounded_upload(view):
    """Before the body is read: refuse a declared size over the limit outright, and bound the rest while it
    streams. CSRF is checked here, after the handlers are in place (reading the form is what reads the body)."""

    @wraps(view)
    def wrapper(request: TenantRequest, app_id: str) -> HttpResponse:
        app = _active_app(request, app_id)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > max_bytes() + FORM_SLACK:
            return _too_large(request, app)
        bound = BoundedUpload(request, max_bytes())
        request.upload_handlers = [bound, TemporaryFileUploadHandler(request)]
        return csrf_protect(view)(request, app, bound)

    return wrapper


def _app_import_start(request: TenantRequest, app: App, bound: BoundedUpload) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES)
    if bound.exceeded:
        return _too_large(request, app)
    if not form.is_valid():
        return _import_page(request, app, form, status=400)
    upload = form.cleaned_data["file"]
    try:
        job = job_import(
            scope=request.scope,
            app_id=app.app_id,
            source=upload.temporary_file_path(),
            filename=upload.name,
            skip_invalid=form.cleaned_data["skip_invalid"],
            move=True,
        )
    except ValidationError as exc:  # the file as a whole (its size); its rows are the job's to check
        form.add_error("file", exc.message)
        return _import_page(request, app, form, status=400)
    return redirect(reverse("job", args=[request.tenant.slug, job.pk]))


# csrf_exempt only defers the check: _bounded_upload runs csrf_protect once the upload is bounded.
app_import_start = csrf_exempt(tenant_view(_bounded_upload(_app_import_start)))


# --- registering a Mem0 OSS collection ------------------------------------------------------


def _register_page(request: TenantRequest, form: RegisterCollectionForm, status: int = 200) -> HttpResponse:
    collection = form.data.get("collection_name", "") if form.is_bound else ""
    token = collection_claim_token(tenant=request.tenant, collection=collection) if collection else ""
    # The claim goes on the store named (a valid one): with several stores, the page says which and where.
    chosen = getattr(form, "cleaned_data", {}).get("store")
    return render(
        request,
        "tenants/register_collection.html",
        {
            "form": form,
            "claim_key": collection_claim_key(collection) if collection else "",
            "token": token,
            "stores": form.fields["store"].choices,
            "several_stores": len(form.fields["store"].choices) > 1,
            "claim_store": chosen,
            "claim_store_url": store_public_url(chosen) if chosen else "",
        },
        status=status,
    )


def _register_form(request: TenantRequest) -> RegisterCollectionForm:
    data = request.POST if request.method == "POST" else None
    return RegisterCollectionForm(data, tenant=request.tenant, stores=store_names())


@tenant_view
def collection_register(request: TenantRequest) -> HttpResponse:
    return _register_page(request, _register_form(request))


@tenant_view
def collection_register_save(request: TenantRequest) -> HttpResponse:
    form = _register_form(request)
    if not form.is_valid():
        return _register_page(request, form, status=400)
    collection = form.cleaned_data["collection_name"]
    store_name = form.cleaned_data["store"]
    if not collection_claimed(tenant=request.tenant, collection=collection, store_name=store_name):
        if "register" not in request.POST:  # the first step: show the claim to set
            return _register_page(request, form)
        form.add_error(
            "collection_name",
            "The claim key below does not hold this tenant's token yet: set it on the store, then register again.",
        )
        return _register_page(request, form, status=400)
    if not collection_exists(collection=collection, store_name=store_name):
        form.add_error(
            "collection_name",
            f"There is no Mem0 collection {collection} on the store (Mem0 makes an "
            "index of that name when its first memory is written).",
        )
        return _register_page(request, form, status=400)
    try:
        with transaction.atomic():
            app_id = form.cleaned_data["app_id"]
            app = app_create(
                tenant=request.tenant, app_id=app_id, name=app_id, collection_name=collection, store=store_name
            )
            # Adopt it; vectors of another size are refused here, before the app exists.
            collection_adopt(app=app.app_ref())
    except IntegrityError:
        form.add_error("collection_name", "This collection cannot be registered.")
        return _register_page(request, form, status=400)
    except MemoryServiceError as exc:
        form.add_error("collection_name", exc.message)
        return _register_page(request, form, status=409 if exc.status == 409 else 400)
    collection_adopted(app=app.app_ref())
    return redirect(reverse("app", args=[request.tenant.slug, app.app_id]))
