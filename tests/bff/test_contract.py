"""Record contracts: declared fields with JSON types, checked on every answer the loaders read."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from bff.contract import RecordContract
from bff.downstream import Call, ServiceClient
from bff.errors import DownstreamContract
from bff.loaders import Loaders
from bff.settings import ServiceSettings

EMPLOYEE = {"id": int, "firstName": str, "title": str | None, "reportsToId": int | None}


def test_a_record_that_holds_its_declaration_passes() -> None:
    """Present fields of the declared types (null where allowed, extra fields ignored) pass."""
    contract = RecordContract(EMPLOYEE)
    record = {"id": 1, "firstName": "Andrew", "title": None, "reportsToId": None, "extra": [1]}
    assert contract.problems(record) == []
    assert contract.check([record], service="customers", resource="employees") is None


def test_an_answer_that_held_is_not_checked_again_and_others_are() -> None:
    """The same list object (the entity cache hands one answer to every operation) is checked once;
    another list is checked on its own, so a breaking copy still breaks."""
    contract = RecordContract(EMPLOYEE)
    record = {"id": 1, "firstName": "Andrew", "title": None, "reportsToId": None}
    answer = [record]
    assert contract.check(answer, service="customers", resource="employees") is None
    record["firstName"] = 7
    assert contract.check(answer, service="customers", resource="employees") is None
    breach = contract.check([record], service="customers", resource="employees")
    assert breach is not None
    assert breach.error.extensions["fields"] == ["firstName"]


def test_an_answer_that_broke_is_checked_every_time() -> None:
    """A breaking answer is never remembered: each operation reading it gets its error."""
    contract = RecordContract(EMPLOYEE)
    answer = [{"id": 1, "firstName": None, "title": None, "reportsToId": None}]
    first = contract.check(answer, service="customers", resource="employees")
    second = contract.check(answer, service="customers", resource="employees")
    assert first is not None
    assert second is not None
    assert second.broke(answer[0])


def test_a_renamed_field_is_missing_though_it_may_be_null() -> None:
    """``reportsTo`` instead of ``reportsToId`` breaks the contract: a nullable field must be present."""
    contract = RecordContract(EMPLOYEE)
    assert contract.problems({"id": 2, "firstName": "Nancy", "title": "x", "reportsTo": 1}) == [
        ("reportsToId", "missing")
    ]


@pytest.mark.parametrize(
    ("declared", "value", "holds"),
    [
        (float, 1, True),
        (float, 0.99, True),
        (int, 1.5, False),
        (int, True, False),
        (str, 3, False),
        (bool, False, True),
        (int | str, "a1", True),
        (object, None, True),
        (list, {}, False),
        (dict, {}, True),
    ],
)
def test_json_types(declared: object, value: object, holds: bool) -> None:
    """``float`` is any JSON number, ``bool`` is not an ``int``, ``object`` is any value."""
    contract = RecordContract({"field": declared})
    assert (contract.problems({"id": 1, "field": value}) == []) is holds


def test_a_type_that_is_not_json_is_refused_at_declaration() -> None:
    """Declaring a field as, say, ``bytes`` raises ``TypeError`` naming the field."""
    with pytest.raises(TypeError, match="'blob'"):
        RecordContract({"blob": bytes})


def test_the_id_is_always_checked() -> None:
    """Without a declaration the id field still must be there, as an integer or a string."""
    contract = RecordContract(id_field="code")
    assert contract.problems({"code": "x"}) == []
    assert contract.problems({"id": 1}) == [("code", "missing")]


def test_a_breach_is_logged_once_counted_per_field_and_named_in_its_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One answer with breaking records: one WARNING line, counts per field, one error naming them."""
    from bff.contract import contract_violations_counter

    counter = contract_violations_counter()
    records = [
        {"id": 1, "firstName": "A", "title": None, "reportsTo": None},
        {"id": 2, "firstName": "B", "title": None, "reportsTo": 1},
        {"id": 3, "firstName": 7, "title": None, "reportsToId": 1},
        {"id": 4, "firstName": "D", "title": None, "reportsToId": 1},
    ]
    with caplog.at_level(logging.WARNING, logger="bff.contract"):
        breach = RecordContract(EMPLOYEE).check(
            records, service="customers", resource="employees", counter=counter
        )
    assert breach is not None
    assert [r.getMessage() for r in caplog.records if r.name == "bff.contract"] == [breach.error.message]
    assert breach.error.extensions == {
        "code": "DOWNSTREAM_CONTRACT",
        "service": "customers",
        "resource": "employees",
        "fields": ["firstName", "reportsToId"],
    }
    assert "reportsToId missing (2 of 4)" in breach.error.message
    assert "firstName integer where string is declared (1 of 4)" in breach.error.message
    assert [breach.broke(record) for record in records] == [True, True, True, False]
    assert counter.value("customers", "employees", "reportsToId") == 2
    assert counter.value("customers", "employees", "firstName") == 1


# The loaders check every answer ---------------------------------------------------------------


class Service:
    """A MockTransport handler answering ``/employees`` with json-server filtering over ``rows``
    (``filtering=False``: every row, as a service that ignores the filters would)."""

    def __init__(self, rows: list[Any], *, filtering: bool = True) -> None:
        self.rows = rows
        self.filtering = filtering
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        wanted: dict[str, set[str]] = {}
        for key, value in parse_qsl(request.url.query.decode()):
            wanted.setdefault(key, set()).add(value)
        rows = [
            r for r in self.rows if not self.filtering or all(str(r.get(k)) in v for k, v in wanted.items())
        ]
        return httpx.Response(200, json=rows)


def client_for(service: Service) -> ServiceClient:
    settings = ServiceSettings.model_validate({"url": "http://customers.test"})
    return ServiceClient("customers", settings, transport=httpx.MockTransport(service))


async def test_a_breaking_record_fails_its_key_and_the_others_load() -> None:
    """In one batch, the key of the record without ``reportsToId`` fails; the rest load; one request."""
    service = Service(
        [
            {"id": 1, "firstName": "A", "title": None, "reportsToId": None},
            {"id": 2, "firstName": "B", "title": None, "reportsTo": 1},
        ]
    )
    client = client_for(service)
    loader = Loaders(Call("r")).by_id(client, "employees", contract=RecordContract(EMPLOYEE))
    one, two, three = await asyncio.gather(
        loader.load("1"), loader.load("2"), loader.load("3"), return_exceptions=True
    )
    await client.aclose()
    assert service.requests == 1
    assert isinstance(one, dict)
    assert one["id"] == 1
    assert isinstance(two, DownstreamContract)
    assert two.extensions["fields"] == ["reportsToId"]
    assert three is None
    assert client.contract_violations.value("customers", "employees", "reportsToId") == 1


async def test_a_record_without_its_id_fails_the_keys_nothing_answered() -> None:
    """An answer with a record the loader cannot key: the unanswered ids fail instead of being null."""
    service = Service([{"id": 1, "firstName": "A"}, {"key": 2, "firstName": "B"}], filtering=False)
    client = client_for(service)
    loader = Loaders(Call("r")).by_id(client, "employees")
    outcomes = await asyncio.gather(loader.load("1"), loader.load("2"), return_exceptions=True)
    await client.aclose()
    assert isinstance(outcomes[0], dict)
    assert isinstance(outcomes[1], DownstreamContract)


async def test_an_answer_that_is_no_list_fails_its_keys() -> None:
    """A batch answered with an object, not a list, is DOWNSTREAM_CONTRACT, not a page of nulls."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": []})

    settings = ServiceSettings.model_validate({"url": "http://customers.test"})
    client = ServiceClient("customers", settings, transport=httpx.MockTransport(handler))
    loaders = Loaders(Call("r"))
    with pytest.raises(DownstreamContract, match="no list"):
        await loaders.by_id(client, "employees").load("1")
    with pytest.raises(DownstreamContract, match="no list"):
        await loaders.by_field(client, "employees", "reportsToId").load("1")
    await client.aclose()


async def test_a_group_with_a_breaking_record_fails_and_the_other_groups_load() -> None:
    """By a foreign key: the group holding the breaking record fails; the other group loads."""
    service = Service(
        [
            {"id": 2, "firstName": "B", "title": None, "reportsToId": 1},
            {"id": 3, "firstName": None, "title": None, "reportsToId": 1},
            {"id": 4, "firstName": "D", "title": None, "reportsToId": 2},
        ]
    )
    client = client_for(service)
    loaders = Loaders(Call("r"))
    loader = loaders.by_field(client, "employees", "reportsToId", contract=RecordContract(EMPLOYEE))
    first, second = await asyncio.gather(loader.load("1"), loader.load("2"), return_exceptions=True)
    await client.aclose()
    assert isinstance(first, DownstreamContract)
    assert isinstance(second, list)
    assert [record["id"] for record in second] == [4]
