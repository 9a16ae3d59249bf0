"""Snapshot the public surface of a vLLM release that the vLLM backend calls, read from its wheel.

Nothing is installed or imported: the wheel is a zip, its Python files are parsed with ``ast``.
The snapshot is what ``tests/inference/test_vllm_contract.py`` compares the test stand-in
(``tests/inference/fake_vllm``) with, so the stand-in cannot drift from the pinned release.

    pip download vllm==0.32.0 --no-deps -d /tmp/vllm_wheel
    python scripts/vllm_signatures.py /tmp/vllm_wheel/vllm-0.32.0-*.whl \
        > tests/inference/vllm_0_32_0_signatures.json

Recorded: ``LLM.__init__`` and ``LLM.generate`` parameters; the ``EngineArgs`` fields (``LLM``
passes its ``**kwargs`` to them: ``max_model_len``, ``enable_lora``, ``max_lora_rank`` …); the public
fields of ``SamplingParams``, ``LoRARequest`` and ``CompletionOutput``; ``RequestOutput.__init__``;
the attributes ``LLMEngine.__init__`` sets (``engine_core``, ``model_config``);
``EngineCoreClient.shutdown``; the allowed LoRA ranks; the finish-reason strings; the exception
``EngineDeadError`` and its bases. Each parameter is ``[name, kind, default]``: kind as in
:class:`inspect.Parameter`, default the source text (``null`` when required).
"""

from __future__ import annotations

import ast
import hashlib
import json
import sys
import zipfile
from typing import Any

FILES = {
    "llm": "vllm/entrypoints/llm.py",
    "engine_args": "vllm/engine/arg_utils.py",
    "sampling_params": "vllm/sampling_params.py",
    "lora_request": "vllm/lora/request.py",
    "outputs": "vllm/outputs.py",
    "llm_engine": "vllm/v1/engine/llm_engine.py",
    "core_client": "vllm/v1/engine/core_client.py",
    "lora_config": "vllm/config/lora.py",
    "engine_init": "vllm/v1/engine/__init__.py",
    "engine_exceptions": "vllm/v1/engine/exceptions.py",
    "version": "vllm/_version.py",
}


def find_class(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise LookupError(f"class {name} not found")


def find_method(cls: ast.ClassDef, name: str) -> ast.FunctionDef:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise LookupError(f"{cls.name}.{name} not found")


def parameters(function: ast.FunctionDef) -> list[list[Any]]:
    """``[name, kind, default source or None]`` for each parameter, ``self`` left out."""
    args = function.args
    rows: list[list[Any]] = []
    positional = args.posonlyargs + args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        kind = "POSITIONAL_ONLY" if index < len(args.posonlyargs) else "POSITIONAL_OR_KEYWORD"
        rows.append([arg.arg, kind, None if default is None else ast.unparse(default)])
    if args.vararg:
        rows.append([args.vararg.arg, "VAR_POSITIONAL", None])
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        rows.append([arg.arg, "KEYWORD_ONLY", None if kw_default is None else ast.unparse(kw_default)])
    if args.kwarg:
        rows.append([args.kwarg.arg, "VAR_KEYWORD", None])
    return [row for row in rows if row[0] not in ("self", "cls")]


def fields(cls: ast.ClassDef, public_only: bool = True) -> list[list[Any]]:
    """Annotated class attributes (dataclass / msgspec fields): ``[name, default source or None]``."""
    rows = []
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
            if public_only and name.startswith("_"):
                continue
            rows.append([name, None if node.value is None else ast.unparse(node.value)])
    return rows


def self_attributes(function: ast.FunctionDef) -> list[str]:
    names = set()
    for node in ast.walk(function):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                names.add(target.attr)
    return sorted(names)


def module_constant(tree: ast.Module, name: str) -> ast.expr:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node.value
        # `name: T` without a value (a declaration, e.g. in _version.py) is skipped.
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            if node.value is not None:
                return node.value
    raise LookupError(f"{name} not found")


def snapshot(wheel: str) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as archive:
        trees = {key: ast.parse(archive.read(path).decode("utf-8")) for key, path in FILES.items()}
    # _version.py writes `__version__ = version = '0.32.0'`: one Assign with two targets.
    version = ast.literal_eval(module_constant(trees["version"], "__version__"))
    llm = find_class(trees["llm"], "LLM")
    ranks = module_constant(trees["lora_config"], "MaxLoRARanks")
    assert isinstance(ranks, ast.Subscript)
    rank_values = ast.literal_eval(ranks.slice)
    dead = find_class(trees["engine_exceptions"], "EngineDeadError")
    return {
        "vllm_version": version,
        "wheel": wheel.rsplit("/", 1)[-1],
        "wheel_sha256": hashlib.sha256(open(wheel, "rb").read()).hexdigest(),  # noqa: SIM115
        "source": f"pip download vllm=={version} --no-deps; parsed with ast by scripts/vllm_signatures.py",
        "LLM.__init__": parameters(find_method(llm, "__init__")),
        "LLM.generate": parameters(find_method(llm, "generate")),
        "EngineArgs": fields(find_class(trees["engine_args"], "EngineArgs")),
        "SamplingParams": fields(find_class(trees["sampling_params"], "SamplingParams")),
        "LoRARequest": fields(find_class(trees["lora_request"], "LoRARequest")),
        "CompletionOutput": fields(find_class(trees["outputs"], "CompletionOutput")),
        "RequestOutput.__init__": parameters(
            find_method(find_class(trees["outputs"], "RequestOutput"), "__init__")
        ),
        "LLMEngine.attributes": self_attributes(
            find_method(find_class(trees["llm_engine"], "LLMEngine"), "__init__")
        ),
        "EngineCoreClient.shutdown": parameters(
            find_method(find_class(trees["core_client"], "EngineCoreClient"), "shutdown")
        ),
        "MaxLoRARanks": list(rank_values),
        "FINISH_REASON_STRINGS": list(
            ast.literal_eval(module_constant(trees["engine_init"], "FINISH_REASON_STRINGS"))
        ),
        "EngineDeadError": {
            "module": "vllm.v1.engine.exceptions",
            "bases": [ast.unparse(base) for base in dead.bases],
        },
    }


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python scripts/vllm_signatures.py PATH/TO/vllm-X.Y.Z-*.whl")
    json.dump(snapshot(argv[0]), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
