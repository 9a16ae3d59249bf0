"""Machine coders in the platform: registered with provenance, trained as a job, coding rounds like a coder.

The pure cores are :mod:`inference.machine_coding` (classifier, LLM prompt and answer); this package
holds their tables, actions, chunk work, tasks, pages and API (docs/machine_coders_in_rounds.md).
"""
