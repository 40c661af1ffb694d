"""YAML that refuses a key given twice in one mapping.

PyYAML's ``safe_load`` keeps the last of two equal keys silently: a second ``acnn:`` block would drop
the first whole. ``load`` is ``safe_load`` (no Python tags) whose mappings raise on a repeated key,
naming the key and both lines, so a configuration means what its file shows.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names one key twice (a ``yaml.YAMLError``, so callers' YAML errors catch it)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings refuse a repeated key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise DuplicateKeyError(
                    f"key {key!r} is given twice in one mapping (lines {first.start_mark.line + 1} and "
                    f"{key_node.start_mark.line + 1}); keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """The YAML document in ``text`` (safe tags only); a key repeated in a mapping is a YAMLError."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
