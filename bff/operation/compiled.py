"""Compiled execution: query operations run by their cached plan (:mod:`bff.operation.plan`).

The schema's graphql-core executor (:func:`compiled_executor`) runs a query's plan instead of
graphql-core's generic walk, in the idea of graphql-jit: an attribute field is a ``getattr`` (no
resolve info, no Strawberry wrapper), a ``String``/``ID`` attribute holding a ``str`` is its own
output, a list or object is completed by its precomputed shape, and sub-selections are never
collected again. Everything else is what graphql-core does, in the same order: resolvers (relationship
fields, Strawberry's wrapper with its permission classes and field extensions) get graphql-core's
resolve info and coerced arguments (``get_argument_values``); awaitables of a selection or a list are
gathered together, so DataLoaders batch as before and loaded records resolve without awaiting
(:mod:`bff.graph.relations`); errors are located, nulled and propagated to the nearest nullable parent
by graphql-core's own ``handle_field_error``, so their messages, paths and locations are its own.

The plan replaces only graphql-core's ``execute_operation``: around it, Strawberry's schema extensions
run as before (parsing, validation, masking, error shaping, stale reporting), or their inline
equivalent for a document already parsed and validated (:mod:`bff.operation.direct`). What the
plan does not cover runs on graphql-core, counted by reason in ``bff_compiled_fallbacks_total``: the
reasons of :mod:`bff.operation.plan_cache` and :mod:`bff.operation.plan`, and ``serial`` when asked to
run root fields one by one. ``BFF_COMPILED_EXECUTION=false`` turns the whole of it off.
"""

from __future__ import annotations

from collections.abc import Awaitable
from types import CoroutineType, GeneratorType
from typing import Any, cast

from graphql import ExecutionResult, GraphQLError, GraphQLResolveInfo
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined, gather_with_cancel, is_iterable

from bff.operation.plan import (
    ATTRIBUTE,
    LEAF,
    LIST,
    NON_NULL,
    OBJECT,
    TYPENAME,
    FieldPlan,
    Shape,
)
from bff.operation.plan_cache import CompiledPlans
from bff.subscriptions import PerEventExecutor

Info = GraphQLResolveInfo[Any]
"""graphql-core's resolve info (Strawberry's subclass of it, here)."""

__all__ = ["compiled_executor"]


def compiled_executor(plans: CompiledPlans) -> type[PerEventExecutor]:
    """The schema's graphql-core executor class, running queries by their plan from ``plans``."""
    plain_types: set[type] = set()
    """Classes whose instances were found not awaitable (:meth:`CompiledExecutor._awaitable`)."""

    class CompiledExecutor(PerEventExecutor):
        """:class:`~bff.subscriptions.PerEventExecutor` with queries run by their compiled plan."""

        def execute_operation(self, serially: bool | None = None) -> Any:
            """Run the operation's plan, or graphql-core's execution when there is none."""
            if serially:
                plans.fallbacks.inc("serial")
                return super().execute_operation(serially)
            plan = plans.plan(self)
            if plan is None:
                return super().execute_operation(serially)
            try:
                result = self._fields(plan.fields, self.root_value, None)
                if type(result) is CoroutineType:
                    return self._await_data(result)
            except GraphQLError as error:
                self.collected_errors.add(error, None)
                return self.finish(self.build_response(None))
            return self.finish(self.build_response(cast("dict[str, Any]", result)))

        def _awaitable(self, value: Any) -> bool:
            """``is_awaitable(value)``, answered once per class for classes that cannot make awaitables.

            graphql-core's test looks at the value: a coroutine, a generator flagged as an iterable
            coroutine, or anything with ``__await__``. ``await`` looks ``__await__`` up on the class, so
            a class without one whose instance answered no answers no for every instance (a generator
            may answer either way): a node type is asked once, not once per node.
            """
            cls = type(value)
            if cls in plain_types:
                return False
            if self.is_awaitable(value):
                return True
            if cls is not GeneratorType and not hasattr(cls, "__await__"):
                plain_types.add(cls)
            return False

        async def _await_data(self, result: Awaitable[dict[str, Any]]) -> ExecutionResult:
            try:
                data = await result
            except GraphQLError as error:
                self.collected_errors.add(error, None)
                return cast("ExecutionResult", self.build_response(None))
            return cast("ExecutionResult", self.build_response(data))

        def _fields(
            self, fields: list[FieldPlan], source: Any, path: Path | None, index: int | None = None
        ) -> Any:
            """A selection's completed fields: a dict, or an awaitable of it (execute_fields).

            The object is at ``path``, or with ``index`` at item ``index`` of the list at ``path``: an
            item's path is made only when a field needs it (a resolver, an error), not for every item
            of a list of plain attributes.

            Every awaitable this executor makes (and graphql-core's completion, for the rare values
            it completes) is a coroutine: ``type(...) is CoroutineType`` tells completed values apart.
            """
            results: dict[str, Any] = {}
            pending: list[str] = []
            try:
                for plan in fields:
                    name = plan.name
                    if plan.simple:
                        # An attribute with a leaf value: inline, and a path only for an error.
                        try:
                            default = plan.default
                            value = (
                                getattr(source, plan.attribute)
                                if default is None
                                else default(source, plan.attribute)
                            )
                            if type(value) is not str or not plan.plain_string:
                                value = self._leaf(plan, path, index, value)
                        except Exception as raw_error:
                            if index is not None:
                                path, index = Path(path, index, None), None
                            field_path = Path(path, name, plan.parent.name)
                            self.handle_field_error(raw_error, plan.definition.type, plan.details, field_path)
                            value = None
                    else:
                        if index is not None:
                            path, index = Path(path, index, None), None
                        value = self._field(plan, source, Path(path, name, plan.parent.name))
                    results[name] = value
                    if type(value) is CoroutineType:
                        pending.append(name)
            except Exception:
                if pending:
                    self.settle_in_background([results[name] for name in pending])
                raise
            if not pending:
                return results
            return self._gather_fields(results, pending)

        async def _gather_fields(self, results: dict[str, Any], pending: list[str]) -> dict[str, Any]:
            if len(pending) == 1:
                name = pending[0]
                results[name] = await results[name]
            else:
                awaited = await gather_with_cancel(*(results[name] for name in pending))
                results.update(zip(pending, awaited, strict=True))
            return results

        def _leaf(self, plan: FieldPlan, path: Path | None, index: int | None, value: Any) -> Any:
            """An attribute's value completed as a leaf (or an awaitable of it); raises a field error.

            ``path`` and ``index`` are the object's, as for :meth:`_fields`."""
            shape = plan.shape
            if shape.kind == NON_NULL:
                if value is None or value is Undefined:
                    raise TypeError(plan.null_message)
                shape = cast("Shape", shape.inner)
            elif value is None or value is Undefined:
                return None
            if isinstance(value, Exception) or self._awaitable(value):
                if index is not None:
                    path = Path(path, index, None)
                return self._value(plan, Path(path, plan.name, plan.parent.name), value, None)
            if shape.plain_string and type(value) is str:
                return value
            return self.complete_leaf_value(shape.graphql_type, value)  # type: ignore[arg-type]

        def _field(self, plan: FieldPlan, source: Any, path: Path) -> Any:
            """The completed value of one field, or an awaitable of it (execute_field)."""
            kind = plan.kind
            if kind == TYPENAME:
                return plan.parent.name
            info: Info | None = None
            try:
                if kind == ATTRIBUTE:
                    result = (
                        getattr(source, plan.attribute)
                        if plan.default is None
                        else plan.default(source, plan.attribute)
                    )
                else:
                    info = self._info(plan, path)
                    args = (
                        get_argument_values(
                            plan.definition, plan.nodes[0], self.variable_values, None, self.hide_suggestions
                        )
                        if plan.arguments
                        else {}
                    )
                    resolve = plan.resolve or self.field_resolver
                    result = resolve(source, info, **args)
                return self._value(plan, path, result, info)
            except Exception as raw_error:
                self.handle_field_error(raw_error, plan.definition.type, plan.details, path)
                return None

        def _value(self, plan: FieldPlan, path: Path, result: Any, info: Info | None) -> Any:
            """Complete what a field's resolver returned; raises as graphql-core's ``complete_value``."""
            if self._awaitable(result):
                return self._complete_awaitable(plan, path, result, info)
            completed = self._complete(plan, plan.shape, path, result, info)
            if type(completed) is CoroutineType:
                return self._await_completed(plan, path, completed)
            return completed

        async def _complete_awaitable(
            self, plan: FieldPlan, path: Path, result: Awaitable[Any], info: Info | None
        ) -> Any:
            try:
                completed = self._complete(plan, plan.shape, path, await result, info)
                if type(completed) is CoroutineType:
                    completed = await completed
            except Exception as raw_error:
                self.handle_field_error(raw_error, plan.definition.type, plan.details, path)
                return None
            return completed

        async def _await_completed(self, plan: FieldPlan, path: Path, completed: Awaitable[Any]) -> Any:
            try:
                return await completed
            except Exception as raw_error:
                self.handle_field_error(raw_error, plan.definition.type, plan.details, path)
                return None

        def _info(self, plan: FieldPlan, path: Path) -> Info:
            return self.build_resolve_info(plan.definition, plan.nodes, plan.parent, path)

        def _complete(self, plan: FieldPlan, shape: Shape, path: Path, result: Any, info: Info | None) -> Any:
            """A value completed by its shape (complete_value); raises a field error."""
            if isinstance(result, Exception):
                raise result
            kind = shape.kind
            if kind == NON_NULL:
                completed = self._complete(plan, cast("Shape", shape.inner), path, result, info)
                if completed is None:
                    raise TypeError(plan.null_message)
                return completed
            if result is None or result is Undefined:
                return None
            if kind == LEAF:
                if shape.plain_string and type(result) is str:
                    return result
                return self.complete_leaf_value(shape.graphql_type, result)  # type: ignore[arg-type]
            if kind == OBJECT:
                is_type_of = shape.graphql_type.is_type_of  # type: ignore[union-attr]
                if is_type_of is not None:
                    # Rare (an object implementing an interface): graphql-core's own completion.
                    return self.complete_value(
                        shape.graphql_type, plan.details, info or self._info(plan, path), path, result, None
                    )
                return self._fields(shape.fields, result, path)
            assert kind == LIST
            if self.is_async_iterable(result):
                return self.complete_value(
                    shape.graphql_type, plan.details, info or self._info(plan, path), path, result, None
                )
            return self._list(plan, cast("Shape", shape.inner), path, result, info)

        def _list(self, plan: FieldPlan, item_shape: Shape, path: Path, items: Any, info: Info | None) -> Any:
            """A list's completed items, or an awaitable of them (complete_iterable_value)."""
            if not is_iterable(items):
                raise GraphQLError(plan.list_message)
            is_awaitable = self._awaitable
            completed: list[Any] = []
            pending: list[int] = []
            item_type = item_shape.graphql_type
            object_fields = item_shape.object_fields
            plain_attributes = item_shape.plain_attributes
            try:
                for index, item in enumerate(items):
                    if is_awaitable(item):
                        completed.append(
                            self._complete_awaitable_item(
                                plan, item_shape, Path(path, index, None), item, info
                            )
                        )
                        pending.append(index)
                        continue
                    if plain_attributes is not None and item is not None and not isinstance(item, Exception):
                        # Plain String/ID attributes each holding a str: the item is their values.
                        # Anything else (a None, another type, an error) takes the general way below.
                        row: dict[str, Any] = {}
                        try:
                            for name, attribute in plain_attributes:
                                value = getattr(item, attribute)
                                if type(value) is not str:
                                    break
                                row[name] = value
                            else:
                                completed.append(row)
                                continue
                        except Exception:  # the general way below reports it, with its path
                            pass
                    try:
                        if object_fields is not None and item is not None and not isinstance(item, Exception):
                            # The item's path is made by _fields only if one of its fields needs it.
                            value = self._fields(object_fields, item, path, index)
                        else:
                            value = self._complete(plan, item_shape, Path(path, index, None), item, info)
                        if type(value) is CoroutineType:
                            item_path = Path(path, index, None)
                            completed.append(self._await_item(plan, item_shape, item_path, value))
                            pending.append(index)
                        else:
                            completed.append(value)
                    except Exception as raw_error:
                        self.handle_field_error(raw_error, item_type, plan.details, Path(path, index, None))
                        completed.append(None)
            except Exception:
                if pending:
                    self.settle_in_background([completed[index] for index in pending])
                raise
            if not pending:
                return completed
            return self._gather_items(completed, pending)

        async def _gather_items(self, completed: list[Any], pending: list[int]) -> list[Any]:
            if len(pending) == 1:
                index = pending[0]
                completed[index] = await completed[index]
            else:
                awaited = await gather_with_cancel(*(completed[index] for index in pending))
                for index, value in zip(pending, awaited, strict=True):
                    completed[index] = value
            return completed

        async def _await_item(self, plan: FieldPlan, shape: Shape, path: Path, value: Awaitable[Any]) -> Any:
            try:
                return await value
            except Exception as raw_error:
                self.handle_field_error(raw_error, shape.graphql_type, plan.details, path)
                return None

        async def _complete_awaitable_item(
            self,
            plan: FieldPlan,
            shape: Shape,
            path: Path,
            item: Awaitable[Any],
            info: Info | None,
        ) -> Any:
            try:
                completed = self._complete(plan, shape, path, await item, info)
                if type(completed) is CoroutineType:
                    completed = await completed
            except Exception as raw_error:
                self.handle_field_error(raw_error, shape.graphql_type, plan.details, path)
                return None
            return completed

    return CompiledExecutor
