"""A stand-in for ``vllm`` 0.32.0, for tests only: the public surface the vLLM backend calls.

Loaded under the name ``vllm`` by the ``fake_vllm`` fixture (``tests/inference/vllm_support.py``);
never installed. Its constructor keywords, ``SamplingParams`` fields and validation, ``LoRARequest``,
``generate`` and its outputs mirror the release; ``tests/inference/test_vllm_contract.py`` compares
them with ``tests/inference/vllm_0_32_0_signatures.json``, taken from the real wheel by
``scripts/vllm_signatures.py``. Instead of a GPU it keeps a ledger (:data:`CONTROL`): engines built
and shut down, calls made, and switches a test flips (kill the engine, fail a prompt, abort one).
"""

from .control import CONTROL
from .entrypoints.llm import LLM
from .sampling_params import SamplingParams

__version__ = "0.32.0"

__all__ = ["CONTROL", "LLM", "SamplingParams", "__version__"]
