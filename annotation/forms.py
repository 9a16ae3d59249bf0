from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from . import parsers
from .models import Dialogue, Membership, Study
from .parsers.characters import bad_character


class CheckedCharacters:
    """Refuse NUL, control characters, lone surrogates and bidi overrides (``parsers.characters``) in
    every text field, naming the field; tab and newlines only in multi-line fields (a Textarea), and an
    uploaded file's name must be one clean line."""

    def clean(self) -> dict:
        data = super().clean()  # type: ignore[misc]
        for name, value in list(data.items()):
            field = self.fields[name]  # type: ignore[attr-defined]
            if isinstance(value, str):
                problem = bad_character(value, multiline=isinstance(field.widget, forms.Textarea))
            elif hasattr(value, "name") and isinstance(field, forms.FileField):
                problem = bad_character(value.name or "", multiline=False)
            else:
                continue
            if problem is not None:
                self.add_error(name, _("Contains %(problem)s, which is not allowed.") % {"problem": problem})  # type: ignore[attr-defined]
        return data

FORMAT_LABELS = {
    "jsonl": _("JSONL (this platform's format)"),
    "cpsycound": _("CPsyCounD text (.txt, folder zip)"),
    "psydt": _("PsyDTCorpus JSON"),
    "sharegpt": _("ShareGPT JSON"),
    "alpaca": _("Alpaca JSON"),
    "annomi": _("AnnoMI CSV"),
    "openai": _("OpenAI chat JSONL"),
    "prefixed": _("Speaker-prefixed text or JSON list of strings (e.g. CPsyCounE)"),
    "csv": _("CSV: dialogue id, speaker, text"),
    "parquet": _("Parquet: dialogue id, speaker, text"),
}
# The labels name each format in words; the keys themselves (``psydt``, ``prefixed``…) are for the API and
# the command line, whose documentation lists them.
FORMAT_CHOICES = [("", _("Detect from content"))] + [(f, FORMAT_LABELS[f]) for f in parsers.FORMATS]


class StudyForm(CheckedCharacters, forms.ModelForm):
    class Meta:
        model = Study
        fields = ["name", "slug", "language", "change_goal", "description"]


class MemberForm(CheckedCharacters, forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    role = forms.ChoiceField(label=_("Role"), choices=Membership.Role.choices)


class ImportForm(CheckedCharacters, forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "JSONL, CPsyCounD .txt or .zip, PsyDTCorpus / ShareGPT / Alpaca / OpenAI chat JSON, speaker-prefixed "
            "text or JSON lists, AnnoMI CSV, CSV or Parquet with dialogue id, speaker and text columns."
        ),
    )
    format = forms.ChoiceField(label=_("Format"), choices=FORMAT_CHOICES, required=False)
    split = forms.ChoiceField(
        label=_("Split"),
        choices=[("", _("As in the file (default unused)"))] + list(Dialogue.Split.choices), required=False
    )
    client_prefix = forms.CharField(
        label=_("Client prefix"), required=False, max_length=40,
        help_text=_("Speaker-prefixed files: the client's name before the colon, e.g. 求助者. CSV/Parquet: the "
                    "client's speaker value. Leave both prefixes empty to detect a known pair."),
    )
    counselor_prefix = forms.CharField(
        label=_("Counselor prefix"), required=False, max_length=40,
        help_text=_("The counselor's name or speaker value, e.g. 支持者."),
    )
    dialogue_column = forms.CharField(label=_("Dialogue id column"), initial="dialogue_id", max_length=100)
    speaker_column = forms.CharField(label=_("Speaker column"), initial="speaker", max_length=100)
    text_column = forms.CharField(label=_("Text column"), initial="text", max_length=100)
    merge_consecutive = forms.BooleanField(
        label=_("Merge consecutive turns of one speaker"), required=False,
        help_text=_("JSONL, ShareGPT, OpenAI chat, PsyDTCorpus and Alpaca records with two turns of one speaker in a "
                    "row, or a counselor turn first where the format needs the client first, are refused unless "
                    "this is ticked; each merged place is then listed as a warning."),
    )

    # Fields for CSV/Parquet columns and prefixes are shown in a group of their own.
    advanced = ("client_prefix", "counselor_prefix", "dialogue_column", "speaker_column", "text_column")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("dialogue_column", "speaker_column", "text_column"):
            self.fields[name].required = False

    def clean(self) -> dict:
        data = super().clean()
        client, counselor = data.get("client_prefix", "").strip(), data.get("counselor_prefix", "").strip()
        if bool(client) != bool(counselor):
            self.add_error("counselor_prefix" if client else "client_prefix",
                           _("Name both the client and the counselor prefix, or neither."))
        return data

    def import_options(self) -> parsers.ImportOptions:
        data = self.cleaned_data
        return parsers.ImportOptions(
            client_prefix=data["client_prefix"], counselor_prefix=data["counselor_prefix"],
            merge_consecutive=data["merge_consecutive"],
            dialogue_column=data["dialogue_column"].strip() or "dialogue_id",
            speaker_column=data["speaker_column"].strip() or "speaker",
            text_column=data["text_column"].strip() or "text",
        )


class RandomSplitForm(forms.Form):
    n_test = forms.IntegerField(label=_("Test dialogues"), min_value=0, initial=40)
    n_train = forms.IntegerField(label=_("Training dialogues"), min_value=0, required=False,
                                 help_text=_("Empty: all the rest."))
    seed = forms.IntegerField(label=_("Random seed"), initial=0)


class IdSplitForm(CheckedCharacters, forms.Form):
    split = forms.ChoiceField(label=_("Split"), choices=Dialogue.Split.choices)
    external_ids = forms.CharField(label=_("Dialogue ids"), widget=forms.Textarea(attrs={"rows": 4}),
                                   help_text=_("One id per line or comma-separated."))
