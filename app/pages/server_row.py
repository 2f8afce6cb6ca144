"""What a collection on a Chroma server's row on the Documents page says:
where it lives, whether its server answers, and its offline copy (how many
passages, from when), as last read by the controller."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerRow:
    """A collection on a Chroma server, as last checked."""

    name: str
    url: str
    remote_name: str
    chunks: int | None  # None: not checked yet, or the server did not answer
    problem: str | None = None  # the server's failure, one sentence
    path_map: tuple[tuple[str, str], ...] = ()
    offline_copy: bool = False  # the user asked for a copy here
    # The copy on this computer: its passages and when it last agreed with
    # the server ("2026-05-14 09:41"); None while there is none.
    copy_passages: int | None = None
    copy_time: str | None = None


def server_state(row: ServerRow) -> str:
    copy = f"offline copy of {row.copy_time}" if row.copy_time is not None else None
    if row.problem and copy:
        return f"Not reachable: answers from the {copy}"
    if row.problem:
        return f"Not reachable: {row.url}"
    return f"On the server {row.url}" + (f" · {copy}" if copy else "")


def server_tip(row: ServerRow) -> str:
    where = f"Searched on {row.url}: each question goes there (see the privacy ledger)."
    text = row.problem or where
    if row.copy_time is not None:
        text += (
            f" This computer keeps an offline copy ({row.copy_passages or 0:,} passages, "
            f"as the server had them at {row.copy_time}), searched when the server cannot "
            "be reached."
        )
    elif row.offline_copy:
        text += " An offline copy is made here when the server answers."
    return text
