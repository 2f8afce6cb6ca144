"""Progress events the web pipeline yields while it works.

Plain frozen dataclasses, like the engine's turn events: the app's adapter
(``app.wiring.grounding.web_event_to_engine``) turns each into the engine's typed
event of the same meaning, which carries the wording the window and the CLI
show, so a rate limit or a failed search is never a silent empty answer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Searching:
    query: str
    provider: str  # human name, e.g. "DuckDuckGo"


@dataclass(frozen=True)
class Fetching:
    done: int
    total: int


@dataclass(frozen=True)
class Ranking:
    pages: int  # pages (or stand-in snippets) with text to rank


@dataclass(frozen=True)
class WebNotice:
    """Something the user should see next to the answer."""

    text: str


@dataclass(frozen=True)
class RateLimitedNotice(WebNotice):
    retry_in_s: float | None = None  # None: not retrying this provider


@dataclass(frozen=True)
class FallbackNotice(WebNotice):
    provider: str = ""  # the provider asked instead


@dataclass(frozen=True)
class SearchFailedNotice(WebNotice):
    """No provider answered: the answer comes from documents or the model alone."""


@dataclass(frozen=True)
class NoResultsNotice(WebNotice):
    pass


@dataclass(frozen=True)
class PagesUnreadNotice(WebNotice):
    """Some result pages could not be read; their snippets stood in."""

    reasons: tuple[tuple[str, str], ...] = ()  # (url, reason)


WebEvent = Searching | Fetching | Ranking | WebNotice
