from django import forms

from tenants.jobs.models import Job

EXPORT_FORMATS = Job.EXPORT_FORMATS


class OffboardForm(forms.Form):
    confirm_app_id = forms.CharField(max_length=128, strip=True)

    def __init__(self, *args, app_id: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.app_id = app_id

    def clean_confirm_app_id(self):
        value = self.cleaned_data["confirm_app_id"]
        if value != self.app_id:
            raise forms.ValidationError(f"Type the app_id exactly ({self.app_id}) to confirm.")
        return value


# Where a job page leads back to, besides the job list: the page the job was started from.
BACK_CHOICES = [("", "the job list"), ("offboard", "the offboarding")]


class ExportJobForm(forms.Form):
    format = forms.ChoiceField(choices=[(f, f.upper()) for f in EXPORT_FORMATS], initial="ndjson")
    gzip = forms.BooleanField(required=False)
    back = forms.ChoiceField(choices=BACK_CHOICES, required=False, widget=forms.HiddenInput)


class JobPageForm(forms.Form):
    """The job page's query string: ``back=offboard`` when an export was started from the offboarding page."""

    back = forms.ChoiceField(choices=BACK_CHOICES, required=False)


class EraseForm(forms.Form):
    user_id = forms.CharField(max_length=128, strip=True)
    confirm_user_id = forms.CharField(max_length=128, strip=True)

    def clean(self):
        data = super().clean()
        if data.get("user_id") and data.get("confirm_user_id") != data.get("user_id"):
            self.add_error("confirm_user_id", "Type the user_id exactly to confirm.")
        return data


class MoveForm(OffboardForm):
    """Which store, and the app_id typed again: a move freezes the app for its whole length."""

    store = forms.ChoiceField(choices=())

    def __init__(self, *args, app_id: str, stores: list[str], **kwargs):
        super().__init__(*args, app_id=app_id, **kwargs)
        self.fields["store"].choices = [(name, name) for name in stores]
