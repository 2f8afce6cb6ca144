"""What each conversation grounds on, behind the composer's globe and
documents buttons: stored with the conversation (``conversations.options``),
shown when it is opened, and turned into a turn's context source and
first-word budget when a question is sent.

A new conversation starts with web search Off until the user has turned it
on once; after that it starts with the mode chosen last (``Settings.
default_web_mode``). Documents: Auto (used when they answer the question),
from every collection unless the user narrows it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Slot

from app.settings import Settings
from app.widgets.banner import Banner
from app.widgets.composer import Composer
from app.wiring.grounding import GroundingChoice, WebOptions
from app.wiring.turn_grounding import GroundingService, TurnGrounding
from engine.budget import FirstWordTarget
from engine.history import ConversationStore
from engine.turn import TurnBudget
from retrieval.source_decision import SourceMode
from retrieval.web.need_search import WebMode

log = logging.getLogger(__name__)


def web_mode_of(value: object, fallback: WebMode = WebMode.OFF) -> WebMode:
    try:
        return WebMode(value)
    except ValueError:
        return fallback


def documents_mode_of(value: object) -> SourceMode:
    try:
        return SourceMode(value)
    except ValueError:
        return SourceMode.AUTO


def first_word_target(settings: Settings) -> FirstWordTarget:
    try:
        return FirstWordTarget(settings.answer_speed)
    except ValueError:
        return FirstWordTarget.BALANCED


def web_options(settings: Settings) -> WebOptions:
    safesearch = settings.web_safesearch
    return WebOptions(
        searxng_url=settings.web_searxng_url.strip(),
        region=settings.web_region.strip() or WebOptions.region,
        safesearch=safesearch if safesearch in ("off", "moderate", "strict") else "moderate",  # type: ignore[arg-type]
        allow_local_fetch=settings.web_allow_local_fetch,
    )


class GroundingController(QObject):
    def __init__(
        self,
        *,
        settings: Settings,
        store: ConversationStore,
        composer: Composer,
        banner: Banner,
        service: GroundingService,
        collection_names: Callable[[], list[str]],
        save_settings: Callable[[], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.store = store
        self.web_toggle = composer.web_toggle
        self.chooser = composer.collections_chooser
        self.banner = banner
        self.service = service
        self._collection_names = collection_names
        self._save_settings = save_settings
        self.conversation_id: int | None = None
        self.web_toggle.mode_chosen.connect(self._on_web_mode_chosen)
        self.chooser.choice_changed.connect(self._on_collections_chosen)
        self.chooser.mode_chosen.connect(self._on_collections_chosen)
        self.show(None)

    # ------------------------------------------------------------ showing

    def show(self, conversation_id: int | None) -> None:
        """Show this conversation's choice on the composer's buttons."""
        self.conversation_id = conversation_id
        options = (
            (self.banner.attempt(self.store.conversation_options, conversation_id) or {})
            if conversation_id is not None
            else {}
        )
        default = web_mode_of(self.settings.default_web_mode)
        self.web_toggle.set_mode(web_mode_of(options.get("web"), default))
        collections = options.get("collections")
        self.chooser.set_chosen(
            [str(n) for n in collections] if isinstance(collections, list) else None
        )
        self.chooser.set_mode(documents_mode_of(options.get("documents", "auto")))

    @Slot()
    def collections_changed(self) -> None:
        self.chooser.set_collections(self._collection_names())

    def conversation_created(self, conversation_id: int) -> None:
        """A conversation was made for the question being sent: it keeps the
        choice the buttons show."""
        self.conversation_id = conversation_id
        self._store_choice()

    # ------------------------------------------------------------ turns

    def choice(
        self, web_query: str | None = None, documents: SourceMode | None = None
    ) -> GroundingChoice | None:
        """The shown conversation's choice, or None when there is nothing to
        ground on (no collections or documents off, and web search off: a
        plain answer). ``documents``: this mode for this turn only ("Use my
        documents" after Auto held them back)."""
        names = self._collection_names()
        chosen = self.chooser.effective()
        documents = documents or self.chooser.mode
        collections: tuple[str, ...] | None = (
            () if not names or documents is SourceMode.OFF else chosen
        )
        mode = self.web_toggle.mode
        if collections == () and mode is WebMode.OFF:
            return None
        return GroundingChoice(
            collections=collections, web=mode, web_query=web_query or None, documents=documents
        )

    def source(
        self, web_query: str | None = None, documents: SourceMode | None = None
    ) -> TurnGrounding:
        """Also when there is nothing to ground on now: the turn then says how
        sources are read in its system prompt all the same, so the prompt stays
        the same when documents or the web are turned on later in the
        conversation (a changed system prompt makes llama.cpp read the whole
        conversation again). Such a source returns at once, opening nothing."""
        choice = self.choice(web_query, documents) or GroundingChoice(
            collections=(), web=WebMode.OFF, documents=SourceMode.OFF
        )
        return self.service.source(choice, web_options(self.settings))

    def local_source(self) -> TurnGrounding | None:
        """The documents part of the shown conversation's choice, for reading
        ahead while the user types: nothing goes to the web before Enter.
        None when the documents are not used."""
        choice = self.choice()
        if choice is None or choice.collections == ():
            return None
        local = GroundingChoice(
            collections=choice.collections,
            web=WebMode.OFF,
            documents=choice.documents,
            servers=False,
        )
        return self.service.source(local, web_options(self.settings))

    def budget(self) -> TurnBudget:
        """The user's answer speed; the prompt speed is the engine session's own."""
        return TurnBudget(first_word_target(self.settings))

    # ------------------------------------------------------------ changes

    @Slot(object)
    def _on_web_mode_chosen(self, mode: WebMode) -> None:
        if self.settings.default_web_mode != mode.value:
            self.settings.default_web_mode = mode.value
            self._save_settings()
        self._store_choice()

    @Slot(object)
    def _on_collections_chosen(self, _chosen: object) -> None:
        self._store_choice()

    def _store_choice(self) -> None:
        if self.conversation_id is None:
            return  # kept on the buttons until the first question makes one
        chosen = self.chooser.chosen
        self.banner.attempt(
            self.store.set_conversation_options,
            self.conversation_id,
            {
                "web": self.web_toggle.mode.value,
                "collections": None if chosen is None else list(chosen),
                "documents": self.chooser.mode.value,
            },
        )
