"""The MI-LLM recipe: MI-style data construction, an LLM-judge quality screen, training exports and
LoRA fine-tuning.

Pure modules (no Django): :mod:`.transform` (rewrite prompt, output validation), :mod:`.judge`
(CPsyCoun rubric), :mod:`.export` (LLaMA-Factory ShareGPT / Alpaca files), :mod:`.finetune`
(transformers + peft LoRA SFT), :mod:`.charts` (the loss chart). Django side: tables in
:mod:`.models` (named by ``inference.models``: they belong to the ``inference`` app), state changes in
:mod:`.actions`, reads in :mod:`.queries`, the long compute in :mod:`.execute`, Celery tasks in
:mod:`.tasks` (discovered by ``mi_platform.celery``, sent by name), pages in :mod:`.views`.
"""
