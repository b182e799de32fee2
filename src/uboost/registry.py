"""A small name -> factory registry, one instance per plug-in kind (cost models, spaces).

Modelled on timm's ``@register_model`` and Optuna's "pass a name or an object": built-ins
register with a decorator, third-party packages through an entry-point group that is loaded
on first lookup, and :meth:`Registry.resolve` turns a name into an object in one place.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from uboost.exceptions import ConfigError, unknown_name

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: Callable[..., T] | None  # None: declared, its module not imported yet
    description: str
    target: str | None = None  # "package.module:attr" of a declared entry


class Registry(Generic[T]):
    """Registered factories of one kind, looked up by name."""

    def __init__(self, kind: str, *, base: type | None = None, entry_point_group: str | None = None):
        self.kind = kind
        self.base = base
        self.entry_point_group = entry_point_group
        self._entries: dict[str, Entry[T]] = {}
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str, *, description: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a class or factory under ``name``; duplicate names raise."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            self.add(name, factory, description=description)
            return factory

        return decorator

    def declare(self, name: str, target: str, *, description: str) -> None:
        """Know a built-in by name and description before its module is imported.

        ``target`` is ``"package.module:attr"``; the module is imported on the first
        :meth:`get`, and registering the same name there (the decorator) fills the entry.
        Listing names (``uboost spaces``) then costs no import of torch or NNI.
        """
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, None, description, target)

    def add(self, name: str, factory: Callable[..., T], *, description: str | None = None) -> None:
        if isinstance(factory, type) and self.base is not None and not issubclass(factory, self.base):
            raise ConfigError(f"{self.kind} {name!r}: {factory.__name__} is not a {self.base.__name__} subclass")
        if not callable(factory):
            raise ConfigError(f"{self.kind} {name!r}: a factory must be callable, got {type(factory).__name__}")
        declared = self._entries.get(name)
        if declared is not None and declared.factory is None:  # the module of a declared entry registers it
            self._entries[name] = Entry(name, factory, description or declared.description, declared.target)
            return
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is already registered (by {self._entries[name].factory!r})")
        doc = description or (factory.__doc__ or "").strip().splitlines()[0:1]
        if isinstance(doc, list):
            doc = doc[0] if doc else ""
        self._entries[name] = Entry(name, factory, doc)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from uboost._entry_points import entry_points  # the scan is cached between runs (~60 ms)

        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self._entries:
                continue
            try:
                factory = ep.load()
            except Exception as exc:  # a broken plug-in must not break the built-ins
                logger.warning("could not load %s plug-in %r from %s: %s", self.kind, ep.name, ep.value, exc)
                continue
            self.add(ep.name, factory)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """Registered names with their one-line descriptions."""
        self._load_plugins()
        return {name: self._entries[name].description for name in sorted(self._entries)}

    def get(self, name: str) -> Callable[..., T]:
        self._load_plugins()
        try:
            entry = self._entries[name]
        except KeyError:
            raise unknown_name(self.kind, name, self._entries) from None
        if entry.factory is None:
            module, _, attr = entry.target.partition(":")
            loaded = importlib.import_module(module)  # registers the real factory
            entry = self._entries[name]
            if entry.factory is None:
                self.add(name, getattr(loaded, attr))
                entry = self._entries[name]
        return entry.factory

    def create(self, name: str, **kwargs: Any) -> T:
        return self.get(name)(**kwargs)

    def resolve(self, obj: str | T, **kwargs: Any) -> T:
        """A name becomes a new object built with ``kwargs``; an object is returned as is."""
        if isinstance(obj, str):
            return self.create(obj, **kwargs)
        if self.base is not None and not isinstance(obj, self.base):
            raise ConfigError(
                f"expected a {self.kind} name or a {self.base.__name__} instance, got {type(obj).__name__}"
            )
        if kwargs:  # an instance is built already: options for a new one would be dropped without a word
            raise ConfigError(f"a {self.kind} instance was given with options for a new one ({', '.join(sorted(kwargs))}); "
                              "give a name with the options, or the instance alone")
        return obj

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries
