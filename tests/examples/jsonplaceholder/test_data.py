"""The JSONPlaceholder-shaped data set: its shapes, counts and relations, and that it is reproducible."""

from __future__ import annotations

from examples.jsonplaceholder.data import DB_JSON, RESOURCES, load_data
from examples.jsonplaceholder.data.make_data import WORDS, encode, make_data

FIELDS = {
    "posts": ["userId", "id", "title", "body"],
    "comments": ["postId", "id", "name", "email", "body"],
    "todos": ["userId", "id", "title", "completed"],
    "users": ["id", "name", "username", "email", "address", "phone", "website", "company"],
}
ADDRESS_FIELDS = ["street", "suite", "city", "zipcode", "geo"]
COMPANY_FIELDS = ["name", "catchPhrase", "bs"]


def test_db_json_is_what_make_data_makes() -> None:
    """The committed ``db.json`` is byte for byte what the generator writes: rerunning it changes nothing."""
    assert DB_JSON.read_bytes() == encode(make_data())


def test_the_seed_decides_the_data() -> None:
    """The same seed gives the same data and another seed other data: nothing depends on the clock."""
    assert make_data(7) == make_data(7)
    assert make_data(7) != make_data(8)


def test_db_json_is_compact() -> None:
    """``db.json`` is one line of JSON without spaces between tokens, well under 200 KB."""
    content = DB_JSON.read_bytes()
    assert len(content) < 150_000
    assert content.count(b"\n") == 1
    assert b'":"' in content
    assert b'": ' not in content


def test_resources_have_jsonplaceholder_counts_and_fields() -> None:
    """Each resource has JSONPlaceholder's record count and exactly its field names, in its order."""
    data = load_data()
    assert list(data) == list(RESOURCES)
    assert {resource: len(records) for resource, records in data.items()} == {
        "posts": 100,
        "comments": 500,
        "todos": 200,
        "users": 10,
    }
    for resource, records in data.items():
        assert all(list(record) == FIELDS[resource] for record in records), resource
    for user in data["users"]:
        assert list(user["address"]) == ADDRESS_FIELDS
        assert list(user["address"]["geo"]) == ["lat", "lng"]
        assert all(isinstance(value, str) for value in user["address"]["geo"].values())
        assert list(user["company"]) == COMPANY_FIELDS
    assert all(isinstance(todo["completed"], bool) for todo in data["todos"])


def test_records_belong_to_their_owners_in_id_blocks() -> None:
    """Ids run from 1; user N owns posts and todos in one block of ids, post N comments in one block."""
    data = load_data()
    for resource, records in data.items():
        assert [record["id"] for record in records] == list(range(1, len(records) + 1)), resource
    assert all(post["userId"] == (post["id"] - 1) // 10 + 1 for post in data["posts"])
    assert all(comment["postId"] == (comment["id"] - 1) // 5 + 1 for comment in data["comments"])
    assert all(todo["userId"] == (todo["id"] - 1) // 20 + 1 for todo in data["todos"])
    completed = sum(todo["completed"] for todo in data["todos"])
    assert 0 < completed < len(data["todos"])  # both states occur, so filters on it select something


def test_text_is_made_from_the_word_list() -> None:
    """Every word of every title, body and comment name comes from the generator's own word list."""
    data = load_data()
    texts = [post[field] for post in data["posts"] for field in ("title", "body")]
    texts += [comment[field] for comment in data["comments"] for field in ("name", "body")]
    texts += [todo["title"] for todo in data["todos"]]
    assert {word for text in texts for word in text.split()} <= set(WORDS)
    assert all("\n" in post["body"] for post in data["posts"])


def test_load_data_returns_a_fresh_copy() -> None:
    """Changing what ``load_data`` returned does not change what the next call returns."""
    first = load_data()
    first["posts"].clear()
    first["users"][0]["address"]["city"] = "changed"
    second = load_data()
    assert len(second["posts"]) == 100
    assert second["users"][0]["address"]["city"] != "changed"
