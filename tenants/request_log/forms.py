"""The request log page's filters (query string): validated whole, a bad value is a 400 naming it."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

STATUS_CLASSES = {"2xx": (200, 299), "3xx": (300, 399), "4xx": (400, 499), "5xx": (500, 599), "errors": (400, 599)}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_CURSOR = re.compile(r"(\d{1,20})\.([0-9a-f]{32})")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def cursor_of(row) -> str:
    """The position after ``row``: its time in whole microseconds (integer arithmetic, so it reads back as exactly
    the row's time: one microsecond off would skip the rows that share it) and its id (random: it tells nothing)."""
    return f"{(row.created_at - EPOCH) // MICROSECOND}.{row.id.hex}"


class RequestFilterForm(forms.Form):
    key = forms.CharField(label="Key", required=False, max_length=16, strip=True)
    app = forms.CharField(label="App", required=False, max_length=64, strip=True)
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[
            ("", "Any status"),
            ("2xx", "2xx success"),
            ("3xx", "3xx"),
            ("4xx", "4xx client error"),
            ("5xx", "5xx server error"),
            ("errors", "Errors (4xx and 5xx)"),
        ],
    )
    # Not "method": a form control of that name would hide the <form> element's own .method in the browser.
    http_method = forms.ChoiceField(
        label="Method", required=False, choices=[("", "Any method"), *((m, m) for m in METHODS)]
    )
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    after = forms.CharField(required=False, max_length=60)

    def clean_after(self) -> tuple[datetime, uuid.UUID] | None:
        value = self.cleaned_data.get("after")
        if not value:
            return None
        match = _CURSOR.fullmatch(value)
        if match is None:
            raise forms.ValidationError("Not a position in this log: open the first page again.")
        try:
            moment = EPOCH + int(match[1]) * MICROSECOND
        except (OverflowError, OSError, ValueError):
            raise forms.ValidationError("Not a position in this log: open the first page again.") from None
        return moment, uuid.UUID(match[2])

    def clean(self):
        data = super().clean()
        first, last = self.oldest_day(), timezone.localdate()
        for name in ("date_from", "date_to"):
            day = data.get(name)
            if day and not first <= day <= last:
                self.add_error(
                    name,
                    f"The log keeps the last {settings.MEMADMIN_REQUEST_LOG_DAYS} days: pick a "
                    f"day from {first:%Y-%m-%d} to {last:%Y-%m-%d}.",
                )
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    @staticmethod
    def oldest_day() -> date:
        return timezone.localdate() - timedelta(days=settings.MEMADMIN_REQUEST_LOG_DAYS - 1)

    def days(self) -> tuple[date, date]:
        """The date range shown (the chart's days): the filters', else the whole log."""
        data = self.cleaned_data
        return data.get("date_from") or self.oldest_day(), data.get("date_to") or timezone.localdate()
