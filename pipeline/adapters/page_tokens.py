"""Page tokens of DynamoDB listings, written once: a ``LastEvaluatedKey`` (or several, for a merged
listing) made opaque for a URL, bound to the listing it came from, and checked when it comes back.

A token is base64url JSON ``{"s": <scope>, "p": <position>}``; the scope names the listing (a
batch id, a hash of the filters), so a token of one listing is refused by another. It is not
signed: a forged one can only start a listing elsewhere in what the caller may list anyway, and
``start_key`` checks a key's shape before it reaches DynamoDB (which would answer a bad one with
an error, not a page).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from typing import Any


class InvalidPageToken(ValueError):
    """A ``next_token`` this listing did not give."""


def encode(position: Any, *, scope: str) -> str:
    text = json.dumps({"s": scope, "p": position}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(token: str, *, scope: str) -> Any:
    """The position a token of this listing holds; InvalidPageToken otherwise."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidPageToken("next_token is not a token this API gave") from None
    if not isinstance(data, dict) or data.get("s") != scope or "p" not in data:
        raise InvalidPageToken("next_token is not a token this API gave for this listing")
    return data["p"]


def start_key(value: Any, *, keys: Collection[str], partition: tuple[str, str]) -> dict[str, Any]:
    """``value`` as an ``ExclusiveStartKey``: exactly ``keys``, all strings, in ``partition``
    (name, value) of the index being read; InvalidPageToken otherwise."""

    def text(item: Any) -> bool:
        return isinstance(item, dict) and set(item) == {"S"} and isinstance(item["S"], str)

    name, wanted = partition
    if (
        not isinstance(value, dict)
        or set(value) != set(keys)
        or not all(text(item) for item in value.values())
        or value[name]["S"] != wanted
    ):
        raise InvalidPageToken("next_token is not a token this API gave for this listing")
    return value
