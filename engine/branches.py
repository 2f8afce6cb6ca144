"""A conversation as a tree of messages, and the branch that is shown.

Regenerating an answer adds a *version* of it (another child of the same
question); editing a question adds a version of the question (another child
of what came before it). Every message keeps its parent, so nothing is
lost: a conversation is a tree, and the window shows one path through it,
from the first question to the conversation's *head*.

Pure functions over ``(id, parent_id)`` pairs, so the rules are tested
without a database (``engine.history`` stores the tree).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def children_of(parents: Mapping[int, int | None]) -> dict[int | None, list[int]]:
    """Each message's children (``None``: the first messages), oldest first."""
    children: dict[int | None, list[int]] = {}
    for message_id in sorted(parents):
        children.setdefault(parents[message_id], []).append(message_id)
    return children


def path_to(parents: Mapping[int, int | None], head: int) -> list[int]:
    """The ids from the first message down to ``head``, in order."""
    path: list[int] = []
    seen: set[int] = set()
    current: int | None = head
    while current is not None and current in parents and current not in seen:
        seen.add(current)  # a damaged database with a cycle must not hang the app
        path.append(current)
        current = parents[current]
    path.reverse()
    return path


def latest_leaf(children: Mapping[int | None, Sequence[int]], start: int) -> int:
    """Where the branch through ``start`` ends: follow the newest child, so
    switching to a version shows the rest of the conversation as it was last
    continued from there."""
    current = start
    seen = {start}
    while children.get(current):
        current = children[current][-1]
        if current in seen:
            break
        seen.add(current)
    return current


def head_of(parents: Mapping[int, int | None], stored_head: int | None) -> int | None:
    """The end of the branch shown: the stored head when it still exists,
    else the newest message (what a database from before branches means)."""
    if stored_head is not None and stored_head in parents:
        return stored_head
    return max(parents) if parents else None


def versions(children: Mapping[int | None, Sequence[int]], parent: int | None) -> tuple[int, ...]:
    """The versions of a message: its parent's children, oldest first."""
    return tuple(children.get(parent, ()))


def linear_parents(ids: Iterable[int]) -> dict[int, int | None]:
    """Parents of a conversation stored before branches: each message follows
    the one before it."""
    parents: dict[int, int | None] = {}
    previous: int | None = None
    for message_id in sorted(ids):
        parents[message_id] = previous
        previous = message_id
    return parents
