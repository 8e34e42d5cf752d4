"""Per-request DataLoaders: every relation of a page is loaded with one query per relation."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader as StrawberryLoader

from models import (
    ActivityLink,
    Contact,
    CustomFieldDefinition,
    DocumentLink,
    FieldChange,
    OpportunityContact,
    Quote,
    QuoteLine,
    SalesStage,
    StageChange,
)
from resolvers.kinds import KINDS
from resolvers.pagination import Page, PageArgs, outer_joined, paginate_many
from resolvers.permissions import Viewer
from resolvers.records import sort_keys, visible_by_id


@dataclass(frozen=True)
class Children:
    """A one-to-many relation as the loaders (and the planner) read it: which rows, in which
    order, for many parents at once."""

    model: Any
    parent: Any  # the column referring to the parent
    where: tuple[Any, ...] = ()
    order: tuple[Any, ...] = ()
    visible: Callable[[Viewer], Sequence[Any]] | None = None  # conditions by viewer

    def statement(
        self, viewer: Viewer, parent_ids: Sequence[Any] | Any,
        columns: Sequence[Any] | None = None, joins: Sequence[tuple[Any, Any]] = (),
    ) -> Any:
        """With `columns`, plain rows of them, the `joins` (table, ON) outer-joined."""
        return (
            outer_joined(select(*(columns or [self.model])), self.model, joins)
            .where(self.parent.in_(parent_ids), *self.where,
                   *(self.visible(viewer) if self.visible else ()))
            .order_by(*self.order)
        )


def _visible_contact(viewer: Viewer) -> Sequence[Any]:
    visible = select(Contact.id).where(*KINDS["Contact"].visible(viewer))
    return (OpportunityContact.contact_id.in_(visible),)


QUOTES = Children(Quote, Quote.opportunity_id, (Quote.deleted_at.is_(None),), (Quote.id,))
LINES = Children(QuoteLine, QuoteLine.quote_id, (), (QuoteLine.position, QuoteLine.id))
DEAL_CONTACTS = Children(
    OpportunityContact, OpportunityContact.opportunity_id, (),
    (OpportunityContact.is_primary.desc(), OpportunityContact.created_at,
     OpportunityContact.contact_id), _visible_contact,
)
STAGE_HISTORY = Children(
    StageChange, StageChange.opportunity_id, (), (StageChange.changed_at.desc(),
                                                  StageChange.id.desc()),
)
FIELD_HISTORY = Children(
    FieldChange, FieldChange.opportunity_id, (), (FieldChange.changed_at.desc(),
                                                  FieldChange.id.desc()),
)


K = TypeVar("K")
T = TypeVar("T")


class DataLoader(StrawberryLoader[K, T]):
    """Strawberry's DataLoader, whose keys' shared futures each awaiter gets shielded: when
    graphql-core cancels the resolvers beside a failed non-null field, a cancelled awaiter no
    longer cancels the future that another field, still running, awaits too."""

    def load(self, key: K) -> Awaitable[T]:
        return asyncio.shield(super().load(key))


class _ByKind(dict[str, DataLoader[int, Any]]):
    """by_id: a loader per entity type, made when a field first asks for it."""

    def __init__(self, make: Callable[[str], Callable[[list[int]], Any]]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, type_name: str) -> DataLoader[int, Any]:
        if type_name not in KINDS:
            raise KeyError(type_name)
        loader = self[type_name] = DataLoader(self.make(type_name))
        return loader


class Loaders:
    """Made per request; each loader is built on first use (most requests need few)."""

    def __init__(
        self, session: AsyncSession, viewer: Viewer, default_size: int, max_size: int
    ) -> None:
        self.session = session
        self.viewer = viewer
        self.default_size = default_size
        self.max_size = max_size
        self.by_id: dict[str, DataLoader[int, Any]] = _ByKind(self._visible_loader)
        self._relations: dict[Hashable, DataLoader[int, Page[Any]]] = {}
        self._batches: dict[Hashable, DataLoader[Any, Any]] = {}

    @cached_property
    def stage(self) -> DataLoader[str, SalesStage | None]:
        return DataLoader(self._stages)

    @cached_property
    def custom_definitions(self) -> DataLoader[str, list[CustomFieldDefinition]]:
        return DataLoader(self._definitions)

    @cached_property
    def document_links(self) -> DataLoader[int, list[tuple[str, int]]]:
        return DataLoader(self._document_links)

    @cached_property
    def activity_links(self) -> DataLoader[int, list[tuple[str, int]]]:
        return DataLoader(self._activity_links)

    def _visible_loader(self, type_name: str) -> Callable[[list[int]], Any]:
        kind = KINDS[type_name]

        async def load(ids: list[int]) -> list[Any]:
            stmt = visible_by_id(kind, self.viewer, ids)
            found = {r.id: r for r in (await self.session.scalars(stmt)).all()}
            return [found.get(i) for i in ids]

        return load

    async def _definitions(self, entities: list[str]) -> list[list[CustomFieldDefinition]]:
        return await self._children(
            CustomFieldDefinition, CustomFieldDefinition.entity, entities,
            order=[CustomFieldDefinition.position, CustomFieldDefinition.id],
        )

    async def _stages(self, keys: list[str]) -> list[SalesStage | None]:
        stages = {s.key: s for s in (await self.session.scalars(select(SalesStage))).all()}
        return [stages.get(k) for k in keys]

    async def _children(
        self, model: Any, parent: Any, ids: Sequence[Any], *where: Any, order: Sequence[Any] = ()
    ) -> list[list[Any]]:
        return await self._grouped(Children(model, parent, where, tuple(order)), ids)

    def children(self, relation: Children) -> DataLoader[int, list[Any]]:
        """The rows of a one-to-many relation, by parent id."""
        return self.batch(relation, lambda ids: self._grouped(relation, ids))

    async def _grouped(self, children: Children, ids: Sequence[Any]) -> list[list[Any]]:
        grouped: dict[Any, list[Any]] = defaultdict(list)
        statement = children.statement(self.viewer, ids)
        for row in (await self.session.scalars(statement)).all():
            grouped[getattr(row, children.parent.key)].append(row)
        return [grouped[i] for i in ids]






    async def _links(self, link: Any, owner: Any, ids: list[int]) -> list[list[tuple[str, int]]]:
        stmt = (
            select(owner, link.entity, link.record_id)
            .where(owner.in_(ids))
            .order_by(owner, link.entity, link.record_id)
        )
        grouped: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for owner_id, entity, record_id in await self.session.execute(stmt):
            grouped[owner_id].append((entity, record_id))
        return [grouped[i] for i in ids]

    async def _document_links(self, ids: list[int]) -> list[list[tuple[str, int]]]:
        """(entity, record id) of the records each document is linked to."""
        return await self._links(DocumentLink, DocumentLink.document_id, ids)

    async def _activity_links(self, ids: list[int]) -> list[list[tuple[str, int]]]:
        return await self._links(ActivityLink, ActivityLink.activity_id, ids)

    async def relation_page(
        self,
        type_name: str,
        parent_column: Any,
        parent_id: int,
        conditions: list[ColumnElement[bool]],
        order: tuple[tuple[str, bool], ...] | None,
        args: PageArgs,
        spec: Hashable,
        extra_sort: dict[str, Any] | None = None,
        through_visible_parent: bool = False,
    ) -> Page[Any]:
        """A connection below each parent of a page, batched: one query per distinct `spec`
        (the relation and its arguments), whatever the number of parents.

        `through_visible_parent`: the children are visible because their (visible) parent
        is, so `conditions` alone select them (documents, activities, comments)."""
        key = (type_name, parent_column.key, order, args, spec)
        loader = self._relations.get(key)
        if loader is None:
            kind = KINDS[type_name]
            visible = [] if through_visible_parent else kind.visible(self.viewer)
            where = [*visible, *conditions]
            sort, signature = sort_keys(type_name, order, extra_sort)

            async def load(parent_ids: list[int]) -> list[Page[Any]]:
                pages = await paginate_many(
                    self.session, kind.model, parent_column, parent_ids, where, sort,
                    signature, args, self.default_size, self.max_size,
                )
                return [pages[p] for p in parent_ids]

            loader = self._relations[key] = DataLoader(load)
        return await loader.load(parent_id)

    def batch(
        self, key: Hashable, load: Callable[[list[Any]], Awaitable[list[Any]]]
    ) -> DataLoader[Any, Any]:
        """An ad-hoc loader (a relation with its arguments, say), made on first use and
        shared by every field that asks with the same `key`."""
        loader = self._batches.get(key)
        if loader is None:
            loader = self._batches[key] = DataLoader(load)
        return loader

    def selected(
        self, key: Hashable, statement: Callable[[Viewer, list[int]], Any],
        collect: Callable[[Sequence[Any]], dict[int, Any]],
    ) -> DataLoader[int, Any]:
        """Values by id from one statement for all the ids of a batch: `statement(viewer,
        ids)` selects them, `collect(rows)` gives {id: value} (None for an id not there)."""

        async def load(ids: list[int]) -> list[Any]:
            found = collect(list(await self.session.execute(statement(self.viewer, ids))))
            return [found.get(i) for i in ids]

        return self.batch(key, load)

    def fresh(self) -> Loaders:
        """New, empty caches (after a write, so the payload shows what was written)."""
        return Loaders(self.session, self.viewer, self.default_size, self.max_size)
