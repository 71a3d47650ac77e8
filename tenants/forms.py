"""Forms for the dashboard: every query string and every POST body is validated here (bad input -> 400)."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from memadmin.memory import errors
from memadmin.memory.collections import DEFAULT_STORE
from memadmin.memory.filters import EVERYTHING, field_condition, filter_from_fields
from memadmin.memory.ids import clean_app_id, clean_id
from memadmin.memory.receipts import KINDS as RECEIPT_KINDS
from memadmin.memory.services import MAX_MESSAGE_CHARS, clean_text, clean_whole_metadata
from tenants.models import Role
from tenants.validators import validate_collection_name

PAGE_SIZES = (10, 25, 50, 100)


def search_closeness(cleaned_data: dict) -> dict:
    """The score a match needs to be shown as close (MEMADMIN_SEARCH_MIN_SCORE, the cut-off the labelled queries
    support: docs/configuration.md), or none when asked for weaker ones, as memory_search's keyword arguments."""
    if cleaned_data.get("weak"):
        return {"threshold": 0.0}
    cut = settings.MEMADMIN_SEARCH_MIN_SCORE
    return {"threshold": cut}


def _clean_filter_value(field: str, value: str) -> str:
    """'' = unfiltered, '*' = any value, anything else an exact id (validated by the memory service's rules)."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        field_condition(field, value)
    except errors.ValidationError as exc:
        raise forms.ValidationError(exc.message) from None
    return value


class IdField(forms.CharField):
    """An exact entity id; '*' allowed only where it means 'any value'."""

    def __init__(self, *args, id_name: str, allow_any: bool = False, **kwargs):
        kwargs.setdefault("max_length", 128)
        kwargs.setdefault("strip", True)
        super().__init__(*args, **kwargs)
        self.id_name, self.allow_any = id_name, allow_any

    def clean(self, value):
        value = super().clean(value)
        if value in (None, ""):
            return ""
        if self.allow_any:
            return _clean_filter_value(self.id_name, value)
        try:
            return clean_id(value, self.id_name)
        except errors.ValidationError as exc:
            raise forms.ValidationError(exc.message) from None


class BrowseForm(forms.Form):
    """The memory browser's query string: filters, search, paging."""

    q = forms.CharField(label="Search", required=False, max_length=2000, strip=True)
    weak = forms.BooleanField(label="Show weaker matches", required=False)
    app = forms.ChoiceField(label="App", required=False)
    user_id = IdField(label="User", id_name="user_id", allow_any=True, required=False)
    agent_id = IdField(label="Agent", id_name="agent_id", allow_any=True, required=False)
    run_id = IdField(label="Run", id_name="run_id", allow_any=True, required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)
    # A keyset cursor (selectors.memory_page_after): the page after the memory it names, at any depth.
    after = forms.CharField(required=False, max_length=4096, strip=True)
    page_size = forms.TypedChoiceField(
        label="Per page", required=False, coerce=int, empty_value=25, choices=[(n, n) for n in PAGE_SIZES]
    )

    def __init__(self, *args, apps=(), fixed_user: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["app"].choices = [("", "All apps"), *((a.app_id, a.app_id) for a in apps)]
        if fixed_user:
            del self.fields["user_id"]

    def filters(self):
        data = self.cleaned_data
        return (
            filter_from_fields(
                user_id=data.get("user_id") or None,
                agent_id=data.get("agent_id") or None,
                run_id=data.get("run_id") or None,
                app_id=data.get("app") or None,
            )
            if any(data.get(f) for f in ("user_id", "agent_id", "run_id", "app"))
            else EVERYTHING
        )

    @property
    def page_number(self) -> int:
        return self.cleaned_data.get("page") or 1

    @property
    def size(self) -> int:
        return self.cleaned_data.get("page_size") or 25

    def active_filters(self) -> bool:
        return any(self.cleaned_data.get(f) for f in ("user_id", "agent_id", "run_id", "app"))


def _refuse_constant(name: str):
    raise forms.ValidationError(f"Metadata must be plain JSON: {name} is not a JSON number.")


class MemoryEditForm(forms.Form):
    """A memory's text and its whole metadata (a JSON object), checked by the rules the service applies."""

    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=MAX_MESSAGE_CHARS, strip=True)
    metadata = forms.CharField(
        label="Metadata (a JSON object)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "mono"}),
        help_text="Replaces the memory's metadata as a whole: a key left out is removed. user_id, agent_id, run_id, "
        "app_id and Mem0's own keys cannot be set here.",
    )

    def clean_text(self) -> str:
        try:
            return clean_text(self.cleaned_data["text"])
        except errors.ValidationError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_metadata(self) -> dict:
        raw = self.cleaned_data["metadata"].strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise forms.ValidationError(f"Metadata is not valid JSON: {exc}.") from None
        except RecursionError:
            raise forms.ValidationError("Metadata nests too deeply.") from None
        try:
            return clean_whole_metadata(value)
        except errors.ValidationError as exc:
            raise forms.ValidationError(exc.message) from None


class UserForm(forms.Form):
    """?user_id=... of the end-user pages; exact, case-sensitive, never a wildcard."""

    user_id = IdField(label="User id", id_name="user_id", required=True)


class UserSearchForm(forms.Form):
    user_id = IdField(label="User id", id_name="user_id", required=True)
    q = forms.CharField(label="Search this user's memories", required=False, max_length=2000, strip=True)
    weak = forms.BooleanField(label="Show weaker matches", required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=[("json", "JSON"), ("csv", "CSV")], required=False)

    @property
    def fmt(self) -> str:
        return self.cleaned_data.get("format") or "json"


class DeleteUserForm(forms.Form):
    """The operator retypes the user id: deleting a person's memories must never be one stray click."""

    user_id = IdField(id_name="user_id", required=True, widget=forms.HiddenInput)
    confirm_user_id = forms.CharField(label="Type the user id to confirm", max_length=128, strip=False)

    def clean(self):
        data = super().clean()
        if "user_id" in data and data.get("confirm_user_id") != data["user_id"]:
            self.add_error("confirm_user_id", "That does not match the user id exactly (ids are case-sensitive).")
        return data


class DeleteRunForm(forms.Form):
    """One run (session) of one person: the operator retypes the run id."""

    user_id = IdField(id_name="user_id", required=True, widget=forms.HiddenInput)
    run_id = IdField(id_name="run_id", required=True, widget=forms.HiddenInput)
    confirm = forms.CharField(label="Type the run id to confirm", max_length=128, strip=False)
    field, what = "run_id", "run id"

    def clean(self):
        data = super().clean()
        if self.field in data and data.get("confirm") != data[self.field]:
            self.add_error("confirm", f"That does not match the {self.what} exactly (ids are case-sensitive).")
        return data


class DeleteAgentForm(DeleteRunForm):
    """What one agent remembers of one person: the operator retypes the agent id."""

    run_id = None
    agent_id = IdField(id_name="agent_id", required=True, widget=forms.HiddenInput)
    confirm = forms.CharField(label="Type the agent id to confirm", max_length=128, strip=False)
    field, what = "agent_id", "agent id"


class LinkFilterForm(forms.Form):
    """?state=&user_id=&page= of the Data links page."""

    state = forms.ChoiceField(
        required=False, choices=[("", "All"), ("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]
    )
    user_id = IdField(label="User id", id_name="user_id", required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)


class IssueLinkForm(forms.Form):
    user_id = IdField(id_name="user_id", required=True, widget=forms.HiddenInput)
    days = forms.TypedChoiceField(
        label="Valid for",
        coerce=int,
        initial=7,
        choices=[(1, "1 day"), (7, "7 days"), (30, "30 days"), (90, "90 days")],
    )


class EndUserDeleteAllForm(forms.Form):
    confirm = forms.BooleanField(label="I understand that all my memories will be deleted permanently.")


class ErasureFilterForm(forms.Form):
    """The Erasures page's filters: the person and the app exactly as stored (ids are case-sensitive)."""

    user_id = forms.CharField(label="Person", required=False, max_length=128, strip=True)
    app_id = forms.CharField(label="App", required=False, max_length=128, strip=True)
    kind = forms.ChoiceField(label="Kind", required=False, choices=[("", "Any kind"), *RECEIPT_KINDS.items()])
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)

    def clean_user_id(self):
        value = self.cleaned_data["user_id"]
        return _clean_or_error(clean_id, value, "user_id") if value else ""

    def clean_app_id(self):
        value = self.cleaned_data["app_id"]
        return _clean_or_error(clean_id, value, "app_id") if value else ""

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def apply(self, receipts):
        data = self.cleaned_data
        if data.get("user_id"):
            receipts = receipts.filter(user_id=data["user_id"])
        if data.get("app_id"):
            receipts = receipts.of_app(data["app_id"])
        if data.get("kind"):
            receipts = receipts.filter(kind=data["kind"])
        if data.get("date_from"):
            receipts = receipts.filter(created_at__date__gte=data["date_from"])
        if data.get("date_to"):
            receipts = receipts.filter(created_at__date__lte=data["date_to"])
        return receipts


def _clean_or_error(cleaner, value: str, field: str) -> str:
    try:
        return cleaner(value, field)
    except errors.ValidationError as exc:
        raise forms.ValidationError(exc.message) from None


class InvitationForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class NewAccountForm(UserCreationForm):
    """A new account for the invited address (the e-mail comes from the invitation, not the form)."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The page's labels, so an error is headed by the field it sits under ("Password again", not Django's
        # "Password confirmation").
        self.fields["password1"].label = "Password"
        self.fields["password2"].label = "Password again"


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ImportForm(forms.Form):
    file = forms.FileField(
        allow_empty_file=False, help_text="Mem0 Platform JSON, or a memadmin NDJSON/JSON export; gzip allowed."
    )
    skip_invalid = forms.BooleanField(
        required=False,
        label="Import the valid rows and list the malformed ones (otherwise one malformed row refuses the whole file)",
    )


class RegisterCollectionForm(forms.Form):
    app_id = forms.CharField(max_length=64, strip=True)
    collection_name = forms.CharField(max_length=100, strip=True)
    # The store the agents write the collection to (MEMADMIN_STORES): its claim is read and its index checked
    # there, and the app is made on it. Left out (one store, or an older client): the default store.
    store = forms.ChoiceField(choices=(), required=False)

    def __init__(self, *args, tenant, stores: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["store"].choices = [(name, name) for name in stores]

    def clean_store(self) -> str:
        return self.cleaned_data["store"] or DEFAULT_STORE

    def clean_app_id(self):
        try:
            value = clean_app_id(self.cleaned_data["app_id"])
        except errors.ValidationError as exc:
            raise forms.ValidationError(exc.message) from None
        if self.tenant.apps.filter(app_id=value).exists():
            raise forms.ValidationError("This tenant has an app by that id already.")
        return value

    def clean_collection_name(self):
        value = self.cleaned_data["collection_name"]
        validate_collection_name(value)
        if value.startswith("ma_"):
            # memadmin names the collections it makes "ma_...": those belong to apps, live or offboarded.
            raise forms.ValidationError("Collections named ma_… are memadmin's own and cannot be registered.")
        return value


class APIKeyForm(forms.Form):
    """A new API key: its name, the apps it is restricted to (checkboxes; none = every app), whether it may
    offboard, whether it is read-only and the day it expires (optional)."""

    name = forms.CharField(max_length=50, strip=True, error_messages={"required": "A key needs a name."})
    apps = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    may_offboard = forms.BooleanField(required=False)
    read_only = forms.BooleanField(required=False)
    expires = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Give the expiry date as a date (YYYY-MM-DD)."},
    )

    def __init__(self, *args, app_ids: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["apps"].choices = [(app_id, app_id) for app_id in app_ids]
        self.fields["apps"].error_messages["invalid_choice"] = "This tenant has no active app %(value)s."
