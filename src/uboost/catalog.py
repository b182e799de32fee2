"""Names and one-line descriptions of the registered plug-ins, listed without importing torch or NNI.

``uboost hw list`` and ``uboost spaces`` must answer at once. Search spaces are declared lazily
in their own registry (:mod:`uboost.search_spaces.registry`). The cost-model registry lives in
:mod:`uboost.hardware`, which imports torch; its built-ins are read from the
``@register("name", description=...)`` decorators in that package's source (parsed, not
imported), so the list cannot drift from the registry. Third-party models are listed by
entry-point name without being loaded.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path


_DECORATOR = re.compile(r"^@register\((.*?)\)\s*\n\s*(?:class|def) ", re.M | re.S)


def _registered_in(path: Path) -> dict[str, str]:
    """``{name: description}`` of the ``@register(...)`` decorators in one source file. Only the
    decorator calls are parsed (whole-file parsing cost ~0.1 s); a decorator without a literal
    ``description=`` falls back to a full parse for the docstring, as Registry.add does."""
    text = path.read_text(encoding="utf-8")
    if "@register(" not in text:
        return {}
    found = {}
    for match in _DECORATOR.finditer(text):
        try:
            call = ast.parse(f"register({match.group(1)})", mode="eval").body
        except SyntaxError:
            return _registered_in_full(text)
        if not call.args or not isinstance(call.args[0], ast.Constant):
            continue
        description = next((k.value.value for k in call.keywords
                            if k.arg == "description" and isinstance(k.value, ast.Constant)), None)
        if description is None:
            return _registered_in_full(text)
        found[str(call.args[0].value)] = description
    return found


def _registered_in_full(text: str) -> dict[str, str]:
    found = {}
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            continue
        for deco in node.decorator_list:
            func = deco.func if isinstance(deco, ast.Call) else None
            called = getattr(func, "id", None) or getattr(func, "attr", None)
            if called != "register" or not deco.args or not isinstance(deco.args[0], ast.Constant):
                continue
            description = next((k.value.value for k in deco.keywords
                                if k.arg == "description" and isinstance(k.value, ast.Constant)), None)
            if description is None:  # as Registry.add: the first line of the docstring
                description = ((ast.get_docstring(node) or "").strip().splitlines() or [""])[0]
            found[str(deco.args[0].value)] = description
    return found


def builtin_cost_models() -> dict[str, str]:
    """The cost models :mod:`uboost.hardware` registers, read from its source."""
    spec = importlib.util.find_spec("uboost.hardware")  # finds the package without running it
    entries: dict[str, str] = {}
    for folder in spec.submodule_search_locations or []:
        for path in sorted(Path(folder).glob("*.py")):
            entries.update(_registered_in(path))
    return entries


def cost_models() -> dict[str, str]:
    """Cost-model names and descriptions; imports no torch unless :mod:`uboost.hardware` is loaded."""
    if "uboost.hardware" in sys.modules:  # already paid for: ask the real registry
        from uboost.hardware import list_models

        return list_models()
    from uboost._entry_points import entry_points  # cached between runs

    entries = builtin_cost_models()
    for ep in entry_points(group="uboost.cost_models"):
        entries.setdefault(ep.name, f"plug-in ({ep.value})")
    return dict(sorted(entries.items()))


def spaces() -> dict[str, str]:
    """Search-space names and descriptions (built-ins are declared lazily: no NNI import)."""
    from uboost.search_spaces import list_spaces

    return list_spaces()
