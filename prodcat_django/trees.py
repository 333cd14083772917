"""Category trees (django-mptt, django-treebeard, or a plain ``parent`` foreign key): full
paths such as ``"Footwear > Heels"`` for many nodes at once, in a number of queries that does
not grow with the number of nodes.

- django-mptt ``MPTTModel`` and treebeard ``NS_Node``: one query (the inner nodes of the same
  trees that can enclose them, by tree id, depth and left/right bounds);
- treebeard ``MP_Node``: one query (the ancestors' paths are prefixes of the node's path);
- treebeard ``AL_Node`` and any model with a ``parent`` foreign key to itself: one query per
  tree level.

Neither library is imported unless installed; a model that is none of these is not a tree.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

#: Between the names of a path: ``"Women > Footwear > Heels"``.
SEPARATOR = " > "


def split_path(value: str) -> list[str]:
    """``"Footwear > Heels"`` -> ``["Footwear", "Heels"]`` (blank segments dropped)."""
    return [part.strip() for part in str(value).split(">") if part.strip()]


def name_field(model: type[models.Model]) -> str | None:
    """The field holding a category's own name: ``name``, else ``title``, else ``label``."""
    for name in ("name", "title", "label"):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if isinstance(field, models.CharField | models.TextField):
            return name
    return None


def _subclass_of(model: type, module: str, cls: str) -> bool:
    if importlib.util.find_spec(module.split(".")[0]) is None:
        return False
    try:
        base = getattr(importlib.import_module(module), cls, None)
    except ImportError:
        return False
    return base is not None and issubclass(model, base)


class Tree:
    """Paths of the nodes of one tree model. Use :func:`tree_for` to get one."""

    def __init__(self, model: type[models.Model], kind: str) -> None:
        self.model = model
        self.kind = kind  # "mptt", "ns", "mp" or "parent"
        self.name_field = name_field(model)

    def node_name(self, node: models.Model) -> str:
        return str(getattr(node, self.name_field) if self.name_field else node)

    def paths(self, nodes: Iterable[models.Model]) -> dict[Any, list[str]]:
        """``{node.pk: [root name, ..., node name]}`` for ``nodes``."""
        nodes = list(nodes)
        if not nodes:
            return {}
        ancestry = getattr(self, f"_ancestry_{self.kind}")(nodes)
        return {node.pk: [self.node_name(n) for n in ancestry[node.pk]] for node in nodes}

    def labels(self, nodes: Iterable[models.Model]) -> dict[Any, str]:
        return {pk: SEPARATOR.join(names) for pk, names in self.paths(nodes).items()}

    def leaves(self, nodes: Sequence[models.Model]) -> set[Any]:
        """The pks of ``nodes`` that have no children."""
        if self.kind == "mptt":
            opts = self.model._mptt_meta  # type: ignore[attr-defined]
            return {
                n.pk for n in nodes if getattr(n, opts.right_attr) - getattr(n, opts.left_attr) == 1
            }
        if self.kind == "ns":
            return {n.pk for n in nodes if n.rgt - n.lft == 1}  # type: ignore[attr-defined]
        if self.kind == "mp":
            return {n.pk for n in nodes if not n.numchild}  # type: ignore[attr-defined]
        parents = set(
            self.model._default_manager.filter(parent__in=[n.pk for n in nodes]).values_list(
                "parent", flat=True
            )
        )
        return {n.pk for n in nodes if n.pk not in parents}

    # --- one implementation per kind -------------------------------------------------------

    def _ancestry_bounds(
        self, nodes: list[models.Model], tree: str, left: str, right: str, depth: str
    ) -> dict[Any, list[models.Model]]:
        # One query: every node of the same trees above the deepest asked-for level that
        # could enclose one of them (inner nodes; far fewer than leaves), matched here.
        trees = {getattr(n, tree) for n in nodes}
        candidates = list(
            self.model._default_manager.filter(
                **{
                    f"{tree}__in": trees,
                    f"{depth}__lt": max(getattr(n, depth) for n in nodes),
                    f"{left}__lt": max(getattr(n, left) for n in nodes),
                    f"{right}__gt": min(getattr(n, right) for n in nodes),
                }
            )
        )
        by_tree: dict[Any, list[models.Model]] = {}
        for a in candidates:
            by_tree.setdefault(getattr(a, tree), []).append(a)
        result = {}
        for n in nodes:
            chain = [
                a
                for a in by_tree.get(getattr(n, tree), ())
                if getattr(a, left) < getattr(n, left) and getattr(a, right) > getattr(n, right)
            ]
            result[n.pk] = [*sorted(chain, key=lambda a: getattr(a, depth)), n]
        return result

    def _ancestry_mptt(self, nodes: list[models.Model]) -> dict[Any, list[models.Model]]:
        opts = self.model._mptt_meta  # type: ignore[attr-defined]
        return self._ancestry_bounds(
            nodes, opts.tree_id_attr, opts.left_attr, opts.right_attr, opts.level_attr
        )

    def _ancestry_ns(self, nodes: list[models.Model]) -> dict[Any, list[models.Model]]:
        return self._ancestry_bounds(nodes, "tree_id", "lft", "rgt", "depth")

    def _ancestry_mp(self, nodes: list[models.Model]) -> dict[Any, list[models.Model]]:
        steplen = self.model.steplen  # type: ignore[attr-defined]
        prefixes = {
            n.path[:i]
            for n in nodes
            for i in range(steplen, len(n.path) + 1, steplen)  # type: ignore[attr-defined]
        }
        by_path = {a.path: a for a in self.model._default_manager.filter(path__in=prefixes)}  # type: ignore[attr-defined]
        return {
            n.pk: [
                by_path[n.path[:i]]  # type: ignore[attr-defined]
                for i in range(steplen, len(n.path) + 1, steplen)  # type: ignore[attr-defined]
                if n.path[:i] in by_path  # type: ignore[attr-defined]
            ]
            for n in nodes
        }

    def _ancestry_parent(self, nodes: list[models.Model]) -> dict[Any, list[models.Model]]:
        known = {n.pk: n for n in nodes}
        wanted = {n.parent_id for n in nodes} - set(known) - {None}  # type: ignore[attr-defined]
        while wanted:  # one query per level
            level = list(self.model._default_manager.filter(pk__in=wanted))
            known.update((a.pk, a) for a in level)
            wanted = {a.parent_id for a in level} - set(known) - {None}  # type: ignore[attr-defined]
        result = {}
        for n in nodes:
            chain, current, seen = [], n, set()
            while current is not None and current.pk not in seen:
                seen.add(current.pk)
                chain.append(current)
                current = known.get(current.parent_id)  # type: ignore[attr-defined]
            result[n.pk] = chain[::-1]
        return result


def tree_for(model: type[models.Model] | None) -> Tree | None:
    """The :class:`Tree` of ``model``, or None when it is not a tree."""
    if model is None:
        return None
    if _subclass_of(model, "mptt.models", "MPTTModel"):
        return Tree(model, "mptt")
    if _subclass_of(model, "treebeard.mp_tree", "MP_Node"):
        return Tree(model, "mp")
    if _subclass_of(model, "treebeard.ns_tree", "NS_Node"):
        return Tree(model, "ns")
    try:
        parent = model._meta.get_field("parent")
    except FieldDoesNotExist:
        return None
    if isinstance(parent, models.ForeignKey) and parent.related_model in (model, "self"):
        return Tree(model, "parent")
    return None
