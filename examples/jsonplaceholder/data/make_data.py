"""Generate ``db.json``: JSONPlaceholder's resources, field names and counts, with made-up text.

Usage, from the repository root: ``python -m examples.jsonplaceholder.data.make_data``. It rewrites
``db.json`` beside this file and prints its path and size. Standard library only.

The shapes follow https://jsonplaceholder.typicode.com (json-server 0.17 conventions, ``<thing>Id``
foreign keys); none of its text is used. Every string is built here from ``WORDS`` and a few syllables,
with ``random.Random(SEED)``, so a run gives the same bytes every time (``random``'s ``choice``,
``randint`` and ``random`` are stable across Python versions for an ``int`` seed):

- ``users``: 10, ``{id, name, username, email, address{street, suite, city, zipcode, geo{lat, lng}},
  phone, website, company{name, catchPhrase, bs}}``; ``lat``/``lng`` are strings, as there;
- ``posts``: 100, ``{userId, id, title, body}``, 10 per user, user 1 owning posts 1-10;
- ``comments``: 500, ``{postId, id, name, email, body}``, 5 per post, post 1 owning comments 1-5;
- ``todos``: 200, ``{userId, id, title, completed}``, 20 per user, user 1 owning todos 1-20.

Bodies are lines joined by ``\\n``, as JSONPlaceholder's are. Albums and photos are left out.
"""

from __future__ import annotations

import json
import random
import sys

from examples.jsonplaceholder.data import DB_JSON, RESOURCES, Record

SEED = 20261130
"""The seed of the one ``random.Random`` every value comes from; change it and ``db.json`` changes."""

USERS = 10
POSTS_PER_USER = 10
COMMENTS_PER_POST = 5
TODOS_PER_USER = 20

# Lorem-ish words of our own choosing: short, lowercase ASCII, so titles and bodies look like filler text.
_WORD_TEXT = """
    lorem ipsum dolor sit amet porta velit nunc magna brevis cura tempus ferro lumen vitae nova
    saxum orbis ventus aqua terra ignis silva campus mare portus domus via rota fabula nexus lux
    modus opus ordo pars ratio series signum summa tabula usus vox arcus gradus fluxus status
    motus sensus cursus casus actus fructus manus nodus ramus radix folium semen granum pomum
    alto bello calmo denso egro forte grato ilare lento mite nitido oculto placido raro sereno
    tenue ultimo vasto acre blando claro duro facile gelido lieve molle nudo puro quieto solido
"""
WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split())
"""Every word of every title, body, comment name, catch phrase and ``bs``."""
# Syllables of made-up names (people, cities, companies), so no real person or place is named.
_SYLLABLE_TEXT = "ka lo mi ren sa to vel ni da ri an bel cor dor el fen gar hal ir jon kes lin mar nor os pel"
_SYLLABLES: tuple[str, ...] = tuple(_SYLLABLE_TEXT.split())
_STREET_KINDS = ("Street", "Lane", "Avenue", "Road", "Way", "Court", "Row", "Square")
_TLDS = ("test", "example", "invalid")  # reserved by RFC 2606: no real domain is named


def make_data(seed: int = SEED) -> dict[str, list[Record]]:
    """Return every resource (in ``RESOURCES`` order): resource name -> records in ``id`` order.

    The same ``seed`` always gives the same data.
    """
    rng = random.Random(seed)
    users = [_user(rng, user_id) for user_id in range(1, USERS + 1)]
    posts = [
        {
            "userId": user["id"],
            "id": (user["id"] - 1) * POSTS_PER_USER + n,
            "title": _words(rng, 3, 8),
            "body": _lines(rng, 3, 4, 5, 9),
        }
        for user in users
        for n in range(1, POSTS_PER_USER + 1)
    ]
    comments = []
    for post in posts:
        for n in range(1, COMMENTS_PER_POST + 1):
            first, last = _name_part(rng), _name_part(rng)
            comments.append(
                {
                    "postId": post["id"],
                    "id": (post["id"] - 1) * COMMENTS_PER_POST + n,
                    "name": _words(rng, 2, 6),
                    "email": f"{first.lower()}_{last.lower()}@{rng.choice(WORDS)}.{rng.choice(_TLDS)}",
                    "body": _lines(rng, 2, 3, 4, 7),
                }
            )
    todos = [
        {
            "userId": user["id"],
            "id": (user["id"] - 1) * TODOS_PER_USER + n,
            "title": _words(rng, 2, 6),
            "completed": rng.random() < 0.45,
        }
        for user in users
        for n in range(1, TODOS_PER_USER + 1)
    ]
    by_name = {"posts": posts, "comments": comments, "todos": todos, "users": users}
    return {resource: by_name[resource] for resource in RESOURCES}


def encode(data: dict[str, list[Record]]) -> bytes:
    """Return ``data`` as ``db.json`` holds it: compact UTF-8 JSON on one line, with a final newline."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def main() -> int:
    """Rewrite ``db.json`` beside this module from ``make_data()``; print its path and size in bytes."""
    content = encode(make_data())
    DB_JSON.write_bytes(content)
    print(f"wrote {DB_JSON} ({len(content)} bytes)")
    return 0


def _user(rng: random.Random, user_id: int) -> Record:
    """Return user ``user_id`` with every nested object JSONPlaceholder's users have."""
    first, last = _name_part(rng), _name_part(rng)
    username = f"{first}{rng.choice(_SYLLABLES)}" if rng.random() < 0.5 else f"{first}.{last}"
    domain = f"{rng.choice(WORDS)}{rng.choice(WORDS)}.{rng.choice(_TLDS)}"
    return {
        "id": user_id,
        "name": f"{first} {last}",
        "username": username,
        "email": f"{first.lower()}@{domain}",
        "address": {
            "street": f"{rng.choice(WORDS).capitalize()} {rng.choice(_STREET_KINDS)}",
            "suite": f"{rng.choice(('Apt.', 'Suite'))} {rng.randint(100, 999)}",
            "city": f"{_name_part(rng)}{rng.choice(('ton', 'ville', 'burg', 'field', 'ford'))}",
            "zipcode": f"{rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}",
            "geo": {"lat": f"{rng.uniform(-90, 90):.4f}", "lng": f"{rng.uniform(-180, 180):.4f}"},
        },
        "phone": f"{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
        "website": domain,
        "company": {
            "name": f"{_name_part(rng)} {rng.choice(('Group', 'LLC', 'Inc', 'and Sons'))}",
            "catchPhrase": _words(rng, 3, 3).capitalize(),
            "bs": _words(rng, 3, 3),
        },
    }


def _name_part(rng: random.Random) -> str:
    """Return a made-up capitalized name of two or three syllables, such as ``Kavelni``."""
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _words(rng: random.Random, least: int, most: int) -> str:
    """Return ``least`` to ``most`` words from ``WORDS``, lowercase, joined by spaces."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(least, most)))


def _lines(rng: random.Random, least: int, most: int, least_words: int, most_words: int) -> str:
    """Return ``least`` to ``most`` lines of ``least_words`` to ``most_words`` words, joined by ``\\n``."""
    return "\n".join(_words(rng, least_words, most_words) for _ in range(rng.randint(least, most)))


if __name__ == "__main__":
    sys.exit(main())
