"""Nodes of a cached list answer: built once per answer, shared between the operations reading it."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from graphql.pyutils import Path

from bff.graph.nodes import SharedNodes
from bff.loaders import Record
from bff.operation.budget import Budget, BudgetExceeded
from bff.stale import StaleLog


@dataclass
class Post:
    id: str
    title: str

    @classmethod
    def from_record(cls, record: Record) -> Post:
        return cls(id=str(record["id"]), title=record["title"])


def info(max_items: int = 1_000) -> Any:
    """A stand-in for one operation's info on ``Query.posts``: its budget and stale log."""
    context = SimpleNamespace(budget=Budget(max_items=max_items, deadline=None), stale=StaleLog())
    return SimpleNamespace(context=context, path=Path(None, "posts", "Query"))


async def test_the_same_answer_gets_the_same_nodes_and_another_answer_its_own() -> None:
    """A list object given again (the entity cache's answer) gets the nodes built the first time, in a
    list of its own; an equal but other list is built anew; each operation counts its items."""
    shared = SharedNodes()
    answer = [{"id": 1, "title": "a"}, {"id": 2, "title": "b"}]
    first_info, second_info = info(), info()
    first = shared.nodes(first_info, Post.from_record, answer)
    second = shared.nodes(second_info, Post.from_record, answer)
    other = shared.nodes(info(), Post.from_record, [dict(record) for record in answer])
    assert first == [Post("1", "a"), Post("2", "b")]
    assert second is not first
    assert all(a is b for a, b in zip(first, second, strict=True))
    assert other == first
    assert not any(a is b for a, b in zip(first, other, strict=True))
    assert first_info.context.budget.items == second_info.context.budget.items == 2


async def test_a_shared_answer_still_counts_against_each_operations_budget() -> None:
    """Reusing the nodes does not skip the item budget: past it the list field fails as before."""
    shared = SharedNodes()
    answer = [{"id": i, "title": str(i)} for i in range(3)]
    shared.nodes(info(), Post.from_record, answer)
    with pytest.raises(BudgetExceeded):
        shared.nodes(info(max_items=2), Post.from_record, answer)
