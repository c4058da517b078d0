"""In-memory record storage with a (updated_at, id) index for stable keyset pagination."""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_left, bisect_right, insort
from typing import Any

from .timeutil import normalize_timestamp

Key = tuple[str, str]  # (updated_at, id)


def encode_page_token(key: Key) -> str:
    raw = f"{key[0]}|{key[1]}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_page_token(token: str) -> Key:
    """Raises ValueError for anything that is not a token this module produced."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("invalid page token") from exc
    updated_at, sep, record_id = raw.partition("|")
    if not sep or not record_id:
        raise ValueError("invalid page token")
    return normalize_timestamp(updated_at), record_id


def _matches(value: Any, wanted: str) -> bool:
    if isinstance(value, str):
        return value == wanted
    return json.dumps(value) == wanted or str(value) == wanted


class ResourceStore:
    """Records of one resource. Stored dicts are never mutated in place, only replaced,
    so callers may serialize them after releasing the system lock."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self._index: list[Key] = []

    def __len__(self) -> int:
        return len(self.records)

    def get(self, record_id: str) -> dict[str, Any] | None:
        return self.records.get(record_id)

    def put(self, record: dict[str, Any]) -> None:
        record_id = record["id"]
        old = self.records.get(record_id)
        if old is not None:
            self._remove_key((old["updated_at"], record_id))
        self.records[record_id] = record
        insort(self._index, (record["updated_at"], record_id))

    def delete(self, record_id: str) -> dict[str, Any] | None:
        old = self.records.pop(record_id, None)
        if old is not None:
            self._remove_key((old["updated_at"], record_id))
        return old

    def ordered(self) -> list[dict[str, Any]]:
        return [self.records[key[1]] for key in self._index]

    def page(
        self,
        *,
        since: str | None,
        after: Key | None,
        limit: int,
        filters: dict[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], Key | None]:
        """Records with updated_at >= since and key > after, in key order; plus the key to resume after."""
        index = self._index
        start = 0
        if since is not None:
            start = bisect_left(index, (since, ""))
        if after is not None:
            start = max(start, bisect_right(index, after))
        if not filters:
            keys = index[start : start + limit + 1]
            has_more = len(keys) > limit
            keys = keys[:limit]
            items = [self.records[key[1]] for key in keys]
            return items, (keys[-1] if has_more and keys else None)
        items = []
        last: Key | None = None
        for position in range(start, len(index)):
            key = index[position]
            record = self.records[key[1]]
            if all(_matches(record.get(name), wanted) for name, wanted in filters.items()):
                if len(items) == limit:
                    return items, last
                items.append(record)
                last = key
        return items, None

    def _remove_key(self, key: Key) -> None:
        position = bisect_left(self._index, key)
        if position < len(self._index) and self._index[position] == key:
            del self._index[position]
