"""Keep pydantic out of ``uboost <cmd> --help`` and the listings.

typer 0.29 builds a pydantic ``TypeAdapter`` for every parameter it processes -- also for an
option the user did not give, whose value is ``None`` and is returned before any coercion
(``typer._coercion.RuntimeParam.coerce``). Importing pydantic costs ~0.3 s, as much as the rest of
the CLI's start-up together. :func:`install` defers building the real coercion to the first value
that needs it; behaviour is unchanged. It does nothing on a typer without these internals.
"""

from __future__ import annotations

from typing import Any


def install() -> bool:
    """Patch ``typer.core.build_runtime_param`` to build lazily; True when it applied."""
    try:
        import typer.core as core
        from typer._coercion import RuntimeParam
    except ImportError:  # pragma: no cover - another typer
        return False
    build = getattr(core, "build_runtime_param", None)
    if build is None or getattr(build, "_uboost_lazy", False):
        return build is not None

    class LazyRuntimeParam(RuntimeParam):
        def __init__(self, descriptor: Any) -> None:  # RuntimeParam is a frozen dataclass
            object.__setattr__(self, "descriptor", descriptor)
            object.__setattr__(self, "annotation", descriptor.annotation)
            object.__setattr__(self, "parameter_info", descriptor.parameter_info)
            object.__setattr__(self, "_real", None)

        def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
            if value is None:  # as RuntimeParam.coerce: nothing to coerce, no adapter needed
                return super().coerce(value, param, ctx)
            return self._resolved().coerce(value, param=param, ctx=ctx)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            return self._resolved()._coerce_value(value, param=param, ctx=ctx)

        def _resolved(self):
            if self._real is None:
                object.__setattr__(self, "_real", build(self.descriptor))
            return self._real

    def lazy_build(descriptor: Any):
        return LazyRuntimeParam(descriptor)

    lazy_build._uboost_lazy = True
    core.build_runtime_param = lazy_build
    return True
