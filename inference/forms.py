"""Forms of the model registry and of starting a run. Validation of a model is the registry's."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from annotation.forms import CheckedCharacters
from annotation.models import Dialogue

from . import registry
from .models import RegisteredModel

# Which field a registry problem belongs to, so the form shows it next to that field.
_PROBLEM_FIELDS = {
    "inference.E001": "base_model",
    "inference.E002": "adapter_path",
    "inference.E003": "chat_template",
    "inference.E004": "server_url",
    "inference.E007": "engine_options",
}

MODEL_FIELDS = [
    "name",
    "backend",
    "base_model",
    "adapter_path",
    "chat_template",
    "system_prompt",
    "server_url",
    "api_key_env",
    "context_length",
    "engine_options",
    "temperature",
    "top_p",
    "top_k",
    "max_new_tokens",
    "repetition_penalty",
    "seed",
    "is_finetuned",
    "base_of",
]


class _OptionsField(forms.JSONField):
    """Engine options: an empty box shows empty again after a refused form (not ``null``)."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class RegisteredModelForm(CheckedCharacters, forms.ModelForm):
    """Registration form; also suitable for the admin (``form = RegisteredModelForm``).

    ``clean`` runs the registry's shallow checks, so a missing folder or chat template is reported
    on its field before anything is saved.
    """

    class Meta:
        model = RegisteredModel
        fields = MODEL_FIELDS
        field_classes = {"engine_options": _OptionsField}
        widgets = {
            "chat_template": forms.Textarea(attrs={"rows": 4}),
            "system_prompt": forms.Textarea(attrs={"rows": 3}),
        }

    def clean_engine_options(self):
        # An empty box means no options (the form field gives None for it).
        return self.cleaned_data.get("engine_options") or {}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        candidate = RegisteredModel(**{k: v for k, v in cleaned.items() if k in MODEL_FIELDS})
        for problem in registry.problems_for(candidate, deep=False):
            if problem.fatal:
                field = _PROBLEM_FIELDS.get(problem.code)
                if problem.code == "inference.E006":  # a parameter rule: the message starts with its field
                    field = problem.message.split()[0]
                self.add_error(field if field in self.fields else None, problem.shown_message())
        return cleaned


class StartRunForm(CheckedCharacters, forms.Form):
    model = forms.ModelChoiceField(queryset=RegisteredModel.objects.all(), label=_("Model"))
    split = forms.ChoiceField(choices=Dialogue.Split.choices, initial=Dialogue.Split.TEST, label=_("Split"))
    chunk_size = forms.IntegerField(
        min_value=1,
        max_value=512,
        initial=8,
        label=_("Chunk size"),
        help_text=_("Rounds per task: one backend batch, written in one transaction."),
    )
