from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from . import parsers
from .models import Dialogue, Membership, Study

FORMAT_CHOICES = [("", _("Detect from content"))] + [(f, f) for f in parsers.FORMATS]


class StudyForm(forms.ModelForm):
    class Meta:
        model = Study
        fields = ["name", "slug", "language", "change_goal", "description"]


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices)


class ImportForm(forms.Form):
    file = forms.FileField(help_text=_("JSONL, CPsyCounD .txt or .zip, PsyDTCorpus / ShareGPT / Alpaca JSON, AnnoMI CSV."))
    format = forms.ChoiceField(choices=FORMAT_CHOICES, required=False)
    split = forms.ChoiceField(
        choices=[("", _("As in the file (default unused)"))] + list(Dialogue.Split.choices), required=False
    )


class RandomSplitForm(forms.Form):
    n_test = forms.IntegerField(min_value=0, initial=40)
    n_train = forms.IntegerField(min_value=0, required=False, help_text=_("Empty: all the rest."))
    seed = forms.IntegerField(initial=0)


class IdSplitForm(forms.Form):
    split = forms.ChoiceField(choices=Dialogue.Split.choices)
    external_ids = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), help_text=_("One id per line or comma-separated."))
