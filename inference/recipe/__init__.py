"""The MI-LLM recipe: MI-style data construction, an LLM-judge quality screen, training exports and
LoRA fine-tuning.

Pure modules (no Django): :mod:`.transform` (rewrite prompt, output validation), :mod:`.judge`
(CPsyCoun rubric), :mod:`.export` (LLaMA-Factory ShareGPT / Alpaca files), :mod:`.finetune`
(transformers + peft LoRA SFT), :mod:`.charts` (the loss chart). Django side: models in
``inference.recipe_models``, state changes in :mod:`.actions`, Celery tasks in :mod:`.tasks`,
pages in :mod:`.views`.
"""
