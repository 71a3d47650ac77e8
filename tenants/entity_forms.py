"""Forms of the Agents and Runs pages and of bulk selection in memory tables (bad input -> 400)."""

from __future__ import annotations

from django import forms

from memadmin.memory import errors
from memadmin.memory.filters import EVERYTHING, filter_from_fields
from memadmin.memory.ids import clean_id
from tenants.forms import IdField

SELECTION_FIELDS = ("user_id", "agent_id", "run_id", "app_id")


def _clean(value: str, field: str) -> str:
    try:
        return clean_id(value, field)
    except errors.ValidationError as exc:
        raise forms.ValidationError(exc.message) from None


def _app_choices(apps) -> list[tuple[str, str]]:
    return [("", "All apps"), *((a.app_id, a.app_id) for a in apps)]


class EntityListForm(forms.Form):
    """?q=&app=&after= of the Agents and Runs pages: q is the start of an id, exact and case-sensitive."""

    q = forms.CharField(label="Id starts with", required=False, max_length=128, strip=True)
    app = forms.ChoiceField(label="App", required=False)
    after = forms.CharField(required=False, max_length=128, strip=False)

    def __init__(self, *args, field: str, apps=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.field = field
        self.fields["app"].choices = _app_choices(apps)

    def clean_q(self):
        value = self.cleaned_data["q"]
        return _clean(value, self.field) if value else ""

    def clean_after(self):
        value = self.cleaned_data["after"]
        return _clean(value, self.field) if value else ""

    def filters(self):
        return filter_from_fields(app_id=self.cleaned_data.get("app") or None)


class EntityForm(forms.Form):
    """?agent_id= (or run_id=) &app=&after= of one agent's or run's page; ``after`` is the memories' cursor."""

    app = forms.ChoiceField(label="App", required=False)
    after = forms.CharField(required=False, max_length=4096, strip=True)

    def __init__(self, *args, field: str, apps=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.field = field
        self.fields[field] = IdField(id_name=field, required=True)
        self.fields["app"].choices = _app_choices(apps)

    @property
    def value(self) -> str:
        return self.cleaned_data[self.field]

    def fields_dict(self) -> dict[str, str]:
        """The entity (and its app, when one is chosen) as filter fields: what the page lists and deletes."""
        return {self.field: self.value, "app_id": self.cleaned_data.get("app") or ""}

    def filters(self):
        return filter_from_fields(**self.fields_dict())


class DeleteEntityForm(EntityForm):
    """Deleting an agent's or a run's memories: the operator retypes the id."""

    confirm = forms.CharField(label="Type the id to confirm", max_length=128, strip=False)

    def clean(self):
        data = super().clean()
        if self.field in data and data.get("confirm") != data[self.field]:
            self.add_error("confirm", "That does not match the id exactly (ids are case-sensitive).")
        return data


class SelectionForm(forms.Form):
    """What a memory table's selection holds: every memory matching the page's filters (``all``), the rows of
    the page (``page_all``), or the ticked rows (``m``, each "<app_id> <memory_id>": no id holds a space).
    ``confirm`` is the number of memories the preview showed, typed back."""

    m = forms.MultipleChoiceField(required=False)
    page_m = forms.MultipleChoiceField(required=False)
    page_all = forms.BooleanField(required=False)
    all = forms.BooleanField(required=False)
    user_id = IdField(id_name="user_id", allow_any=True, required=False)
    agent_id = IdField(id_name="agent_id", allow_any=True, required=False)
    run_id = IdField(id_name="run_id", allow_any=True, required=False)
    app_id = forms.CharField(required=False, max_length=128, strip=True)
    confirm = forms.CharField(required=False, max_length=20, strip=True)
    next = forms.CharField(required=False, max_length=4096)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any value is a choice: each is checked in clean_rows below, then found in the scope (or 404).
        self.fields["m"].valid_value = self.fields["page_m"].valid_value = lambda value: True

    def clean_app_id(self):
        value = self.cleaned_data["app_id"]
        return _clean(value, "app_id") if value else ""

    def _rows(self, name: str) -> list[tuple[str, str]]:
        rows = []
        for value in self.cleaned_data.get(name) or []:
            app_id, _, memory_id = value.partition(" ")
            if not memory_id:
                raise forms.ValidationError("A selected row is not '<app_id> <memory_id>'.")
            rows.append((_clean(app_id, "app_id"), _clean(memory_id, "memory_id")))
        return rows

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        data["rows"] = self._rows("page_m" if data.get("page_all") else "m")
        if not data.get("all") and not data["rows"]:
            raise forms.ValidationError("Nothing is selected: tick rows, the page, or every matching memory.")
        return data

    @property
    def matching(self) -> bool:
        return bool(self.cleaned_data.get("all"))

    def fields_dict(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(name) or "" for name in SELECTION_FIELDS}

    def filters(self):
        fields = self.fields_dict()
        return filter_from_fields(**fields) if any(fields.values()) else EVERYTHING

    def confirmed(self, total: int) -> bool:
        return self.cleaned_data.get("confirm") == str(total)
