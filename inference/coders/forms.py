from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from annotation.models import CodingRound

from ..models import RegisteredModel
from .models import MachineCoder


class RegisterCoderForm(forms.Form):
    name = forms.CharField(max_length=120, label=_("Name"))
    kind = forms.ChoiceField(choices=MachineCoder.Kind.choices, label=_("Kind"))
    training_round = forms.ModelChoiceField(
        queryset=CodingRound.objects.none(), required=False, label=_("Labelled round"),
        help_text=_("A classifier learns from this round: its consensus where adjudicated, else its first coding "
                    "(imported labels)."),
    )
    model = forms.ModelChoiceField(
        queryset=RegisteredModel.objects.all(), required=False, label=_("Model"),
        help_text=_("An LLM coder prompts this registered model with the codebook."),
    )
    codebook = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, label=_("Codebook"),
        help_text=_("Empty: the MITI 4.2.1 behaviour codes with their short definitions."),
    )
    seed = forms.IntegerField(initial=0, label=_("Seed"))
    folds = forms.IntegerField(initial=5, min_value=2, max_value=20, label=_("Cross-validation folds"))

    def __init__(self, *args, study=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["training_round"].queryset = CodingRound.objects.filter(study=study)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == MachineCoder.Kind.CLASSIFIER and not cleaned.get("training_round"):
            self.add_error("training_round", _("A classifier needs a labelled round to learn from."))
        if cleaned.get("kind") == MachineCoder.Kind.LLM and not cleaned.get("model"):
            self.add_error("model", _("An LLM coder needs a registered model."))
        return cleaned


class AddToRoundForm(forms.Form):
    coding_round = forms.ModelChoiceField(queryset=CodingRound.objects.none(), label=_("Round"))

    def __init__(self, *args, study=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["coding_round"].queryset = CodingRound.objects.filter(study=study)
