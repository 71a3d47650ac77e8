"""The audit trail's filters (actor, action, person, app, category, dates), validated as a form: the audit page
(tenants/views/audit.py) and the API's events feed (tenants/api/events.py) filter the same rows the same way,
so the form lives beside neither of them."""

from __future__ import annotations

from django import forms
from django.db.models import Q

from memadmin.memory.models import AuditSubject
from tenants.activity import CATEGORY_CHOICES, category_actions
from tenants.audit_words import audit_action_label


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=200, strip=True)
    action = forms.ChoiceField(required=False)
    user_id = forms.CharField(label="User", required=False, max_length=128, strip=True)
    app_id = forms.CharField(label="App", required=False, max_length=128, strip=True)
    category = forms.ChoiceField(label="Show", required=False, choices=CATEGORY_CHOICES)
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    page = forms.IntegerField(required=False, min_value=1)

    def __init__(self, *args, actions=(), **kwargs):
        super().__init__(*args, **kwargs)
        labelled = sorted((audit_action_label(a), a) for a in actions)
        self.fields["action"].choices = [("", "Any action"), *((a, label) for label, a in labelled)]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def apply(self, events, *, tenant=None):
        """``tenant``: also the rows that named the person among others (the audit log); the API's events feed
        keeps to the rows about the person, as before."""
        data = self.cleaned_data
        if data.get("actor"):
            events = events.filter(actor__icontains=data["actor"])
        if data.get("action"):
            events = events.filter(action=data["action"])
        if data.get("user_id"):
            # The person's own rows, and the rows that named them among others (a page of the memory browser,
            # a whole-app export, an offboarding): both through an index on the user id.
            if tenant is None:
                events = events.filter(user_id=data["user_id"])
            else:
                named = AuditSubject.objects.for_tenant(tenant).filter(user_id=data["user_id"]).values("event_id")
                events = events.filter(Q(user_id=data["user_id"]) | Q(pk__in=named))
        if data.get("app_id"):
            events = events.filter(app_id=data["app_id"])
        if data.get("category"):
            events = events.filter(action__in=category_actions(data["category"]))
        if data.get("date_from"):
            events = events.filter(created_at__date__gte=data["date_from"])
        if data.get("date_to"):
            events = events.filter(created_at__date__lte=data["date_to"])
        return events
