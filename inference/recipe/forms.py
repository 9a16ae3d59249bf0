"""Forms of the recipe pages: input parsing only; the actions validate and act."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from annotation.forms import CheckedCharacters
from annotation.models import Dialogue
from inference import registry
from inference.models import RegisteredModel
from inference.recipe.finetune import LoraHyperparameters
from inference.recipe.models import PromptTemplate

SPLITS = [(value, label) for value, label in Dialogue.Split.choices]
_DEFAULTS = LoraHyperparameters()


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


class TransformationForm(CheckedCharacters, forms.Form):
    model = forms.ModelChoiceField(RegisteredModel.objects.all(), label=_("Rewrite with model"))
    prompt = forms.ModelChoiceField(
        PromptTemplate.objects.filter(kind=PromptTemplate.Kind.TRANSFORM),
        label=_("Prompt version"),
        required=False,
        help_text=_("Empty: the shipped MI rewrite prompt (mi-rewrite v1)."),
    )
    split = forms.ChoiceField(choices=[("", "—")] + SPLITS, required=False, label=_("Dialogues of split"))
    external_ids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label=_("…or these dialogue ids"),
        help_text=_("One per line or comma-separated; with a split, only ids in that split."),
    )
    output_split = forms.ChoiceField(choices=SPLITS, initial="train", label=_("Put the rewrites in split"))
    judge_model = forms.ModelChoiceField(
        RegisteredModel.objects.all(),
        required=False,
        label=_("Quality screen with judge model"),
        help_text=_("Optional: scores each accepted rewrite on the CPsyCoun rubric (0–9)."),
    )
    judge_prompt = forms.ModelChoiceField(
        PromptTemplate.objects.filter(kind=PromptTemplate.Kind.JUDGE),
        required=False,
        label=_("Judge prompt"),
    )
    chunk_size = forms.IntegerField(min_value=1, max_value=256, initial=4, label=_("Chunk size"))
    max_new_tokens = forms.IntegerField(
        min_value=1,
        max_value=32768,
        required=False,
        label=_("Max new tokens"),
        help_text=_("Empty: a quarter of the chosen model's context (at most 2048), so the prompt has room."),
    )

    def clean_external_ids(self) -> list[str]:
        return _ids(self.cleaned_data.get("external_ids") or "")

    def clean(self):
        cleaned = super().clean()
        model = cleaned.get("model")
        if model is None or "max_new_tokens" in self.errors:
            return cleaned
        tokens = cleaned.get("max_new_tokens")
        if tokens is None:
            cleaned["max_new_tokens"] = registry.fitting_max_new_tokens(model)
            return cleaned
        limit = registry.context_limit(model)
        if limit is not None and tokens >= limit:
            self.add_error(
                "max_new_tokens",
                _(
                    "%(tokens)s new tokens leave no room for the prompt: the model %(model)s has a context of "
                    "%(limit)s tokens. Use fewer, e.g. %(fitting)s, or leave the field empty."
                )
                % {"tokens": tokens, "model": model.name, "limit": limit,
                   "fitting": registry.fitting_max_new_tokens(model)},
            )
        return cleaned


class PromptForm(CheckedCharacters, forms.Form):
    name = forms.CharField(max_length=100, label=_("Name"))
    kind = forms.ChoiceField(choices=PromptTemplate.Kind.choices, label=_("Kind"))
    text = forms.CharField(
        label=_("Text"),
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100}),
        help_text=_("Must contain {dialogue}; a rewrite prompt may also use {rounds} and {turns}."),
    )
    note = forms.CharField(max_length=300, required=False, label=_("What changed"))


class ExportForm(CheckedCharacters, forms.Form):
    split = forms.ChoiceField(choices=SPLITS, initial="train", label=_("Split"))
    name = forms.CharField(
        max_length=60, initial="mi", label=_("Name"), help_text=_("Dataset name in dataset_info.json.")
    )
    system_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label=_("System prompt")
    )
    derived_only = forms.BooleanField(required=False, label=_("Only derived (rewritten) dialogues"))
    min_judge_total = forms.IntegerField(
        min_value=0, max_value=9, required=False, label=_("Minimum judge total")
    )


class FineTuneForm(CheckedCharacters, forms.Form):
    base_model = forms.ModelChoiceField(
        RegisteredModel.objects.exclude(backend=RegisteredModel.Backend.OPENAI).filter(adapter_path=""),
        label=_("Base model"),
    )
    output_name = forms.CharField(
        max_length=120, required=False, label=_("Output name"), help_text=_("Empty: <base>-lora.")
    )
    split = forms.ChoiceField(choices=SPLITS, initial="train", label=_("Split"))
    derived_only = forms.BooleanField(required=False, label=_("Only derived (rewritten) dialogues"))
    min_judge_total = forms.IntegerField(
        min_value=0, max_value=9, required=False, label=_("Minimum judge total")
    )
    system_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label=_("System prompt"),
        help_text=_("Empty: the base model's system prompt. The fine-tuned model is registered with it."),
    )
    queue = forms.ChoiceField(
        choices=[("train", "train"), ("gpu", "gpu"), ("cpu", "cpu")],
        initial="train",
        label=_("Queue"),
        help_text=_("train: the GPU training worker; gpu: the vLLM worker (it unloads its engines first); cpu only for tiny models."),
    )
    lora_rank = forms.IntegerField(min_value=1, initial=_DEFAULTS.lora_rank, label=_("LoRA rank"))
    lora_alpha = forms.IntegerField(min_value=1, initial=_DEFAULTS.lora_alpha, label=_("LoRA alpha"))
    lora_dropout = forms.FloatField(
        min_value=0, max_value=0.99, initial=_DEFAULTS.lora_dropout, label=_("LoRA dropout")
    )
    lora_target = forms.CharField(
        initial=_DEFAULTS.lora_target, label=_("LoRA target modules"), help_text=_("'all' = every linear layer.")
    )
    learning_rate = forms.FloatField(min_value=0, initial=_DEFAULTS.learning_rate, label=_("Learning rate"))
    num_epochs = forms.FloatField(min_value=0, initial=_DEFAULTS.num_epochs, label=_("Epochs"))
    batch_size = forms.IntegerField(min_value=1, initial=_DEFAULTS.batch_size, label=_("Batch size"))
    gradient_accumulation_steps = forms.IntegerField(
        min_value=1, initial=_DEFAULTS.gradient_accumulation_steps, label=_("Gradient accumulation steps")
    )
    cutoff_len = forms.IntegerField(min_value=1, initial=_DEFAULTS.cutoff_len, label=_("Cutoff length"))
    lr_scheduler = forms.ChoiceField(
        choices=[("cosine", _("cosine")), ("linear", _("linear")), ("constant", _("constant")),
                 ("constant_with_warmup", _("constant with warmup"))],
        initial=_DEFAULTS.lr_scheduler,
        label=_("Learning-rate scheduler"),
    )
    warmup_ratio = forms.FloatField(
        min_value=0, max_value=0.99, initial=_DEFAULTS.warmup_ratio, label=_("Warmup ratio")
    )
    max_steps = forms.IntegerField(
        min_value=1, required=False, label=_("Max steps"), help_text=_("Optional cap on optimizer steps.")
    )
    seed = forms.IntegerField(initial=_DEFAULTS.seed, label=_("Seed"))

    HYPERPARAMETERS = (
        "lora_rank",
        "lora_alpha",
        "lora_dropout",
        "lora_target",
        "learning_rate",
        "num_epochs",
        "batch_size",
        "gradient_accumulation_steps",
        "cutoff_len",
        "lr_scheduler",
        "warmup_ratio",
        "max_steps",
        "seed",
    )

    def hyperparameters(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in self.HYPERPARAMETERS}
