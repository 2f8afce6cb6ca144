"""The chat turn behind the window: send, stop, the engine's turn events, the
answer's saved draft, and how a turn ends (finished or failed).

It also shows a conversation's messages in the chat view, because showing
the conversation being answered means showing the answer so far. This is the
one place that starts turns and saves answers: a context source (documents,
the web) is handed to ``EngineController.start_turn`` here, and the answer's
sources (``Finished.sources``) belong where the answer is saved.

Versions are here for the same reason (which makes this module longer than
most): Regenerate and Edit start turns, and which branch of the conversation
is shown (``engine.branches``) must agree with the turn in flight, whose
answer is written beside an earlier version or below an edited question.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QAbstractButton, QLabel

from app.controllers.chat_turn import (
    DRAFT_SAVE_S,
    STORED_FOOTERS,
    AskAgain,
    TurnInFlight,
    answer_footer,
    declined_text,
    stored_sources,
)
from app.controllers.models import ModelsController
from app.settings import Settings
from app.widgets.banner import Banner
from app.widgets.chat_view import ChatView
from app.widgets.composer import Composer
from app.workers.engine import EngineController
from engine.context import (
    ContextSource,
    EarlierMessage,
    Passage,
)
from engine.errors import EngineError
from engine.events import (
    Failed,
    Finished,
    Notice,
    Progress,
    PromptProgress,
    ReadingPrompt,
    SearchingWeb,
    Sources,
    SourcesDeclined,
    Token,
)
from engine.history import INTERRUPTED, ConversationStore, StoredMessage
from engine.turn import SamplingParams, TurnRequest
from retrieval.source_decision import SourceMode

if TYPE_CHECKING:
    from app.controllers.grounding import GroundingController

STOPPING_TEXT = "Stopping…"
OPEN_A_MODEL_TEXT = "Open a model first: File → Open Model…"


class ChatController(QObject):
    # A message was added to this conversation (its title and place in the list may change).
    conversation_changed = Signal(int)
    # A turn that searched the web ended (the privacy ledger has new entries).
    web_turn_finished = Signal()

    def __init__(
        self,
        *,
        settings: Settings,
        store: ConversationStore,
        engine: EngineController,
        models: ModelsController,
        chat: ChatView,
        composer: Composer,
        activity: QLabel,
        speed_label: QLabel,
        banner: Banner,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.store = store
        self.engine = engine
        self.models = models
        self.chat = chat
        self.composer = composer
        self.activity = activity
        self.speed_label = speed_label
        self.banner = banner
        self.conversation_id: int | None = None  # the one shown
        # Where a turn's passages come from (documents, the web); None: the
        # model answers from what it knows.
        self.context_source: ContextSource | None = None
        self._turn: TurnInFlight | None = None
        # Documents and web search per conversation (main window attaches it).
        self.grounding: GroundingController | None = None
        self.edit_query_button: QAbstractButton | None = None
        self.use_documents_button: QAbstractButton | None = None
        self.last_answer: AskAgain | None = None
        # Asked while a turn was still running: asked again once it stopped.
        self._rerun: tuple[str | None, SourceMode | None] | None = None
        composer.send_requested.connect(self.send)
        composer.stop_requested.connect(self.stop)
        chat.regenerate_requested.connect(self.regenerate)
        chat.edit_submitted.connect(self.edit_and_resend)
        chat.version_requested.connect(self.show_version)
        engine.turn_event.connect(self._on_turn_event)

    @property
    def generating(self) -> bool:
        return self.composer.generating

    def attach_grounding(
        self,
        grounding: GroundingController,
        edit_query_button: QAbstractButton,
        use_documents_button: QAbstractButton,
    ) -> None:
        self.grounding = grounding
        self.edit_query_button = edit_query_button
        self.use_documents_button = use_documents_button
        edit_query_button.hide()
        use_documents_button.hide()
        grounding.show(self.conversation_id)

    # ------------------------------------------------------------------ showing

    def show(self, conversation_id: int | None) -> None:
        """Show a conversation's messages, and the answer being written in it."""
        if conversation_id == self.conversation_id and self.chat.bubbles():
            return
        self.conversation_id = conversation_id
        if self.grounding is not None:
            self.grounding.show(conversation_id)
        self._show_ask_again()
        self.chat.clear()
        if conversation_id is None:
            return
        messages = self.banner.attempt(self.store.messages, conversation_id) or []
        turn = self._turn
        streaming_here = turn is not None and turn.conversation == conversation_id
        draft_id = turn.draft.id if turn is not None and turn.draft else None
        for message in messages:
            if streaming_here and message.id == draft_id:
                continue  # shown below as the answer being written
            self._add_bubble(message)
            if turn is not None and streaming_here and message.id == turn.user_message.id:
                break  # the question being answered: its answer is below
        if turn is not None and streaming_here:
            self.chat.begin_answer()
            self.chat.append_answer("".join(turn.pieces))
            if turn.sources:
                self.chat.set_streaming_sources(turn.sources)

    def _add_bubble(self, message: StoredMessage, *, follow: bool = True) -> None:
        footer = STORED_FOOTERS.get(message.finish_reason or "", "")
        self.chat.add_message(
            message.role,
            message.content,
            footer,
            message.sources,
            message_id=message.id,
            versions=message.versions,
            follow=follow,
        )

    def forget_conversation(self, conversation_id: int) -> None:
        """The conversation is being deleted: stop its turn, which must write nowhere."""
        if self._turn is not None and self._turn.conversation == conversation_id:
            self.stop()
            self._turn.conversation = None
            self._turn.draft = None
        if self.last_answer is not None and self.last_answer.conversation == conversation_id:
            self.last_answer = None  # nothing left to ask again
            self._show_ask_again()
        if self.conversation_id == conversation_id:
            self.conversation_id = None
            self.chat.clear()  # the next one, if any, is shown by the list's refresh

    # ------------------------------------------------------------------ turns

    @Slot(str)
    def send(
        self, text: str, *, web_query: str | None = None, documents: SourceMode | None = None
    ) -> None:
        """Ask ``text`` in the shown conversation. ``web_query``: search the
        web for this instead of the query the model would write;
        ``documents``: this documents mode for this turn only."""
        if self._turn is not None:
            return
        if not self.models.has_model:
            self.composer.set_text(text)
            self.banner.show_message(OPEN_A_MODEL_TEXT, level="info")
            return
        if self.conversation_id is None:
            conv = self.banner.attempt(self.store.create_conversation)
            if conv is None:
                self.composer.set_text(text)
                return
            self.conversation_id = conv.id
            if self.grounding is not None:
                self.grounding.conversation_created(conv.id)
        conversation = self.conversation_id
        history = [
            m.as_earlier_message()
            for m in (self.banner.attempt(self.store.messages, conversation) or [])
        ]
        user_message = self.banner.attempt(self.store.add_message, conversation, "user", text)
        if user_message is None:  # not saved: keep the text, do not answer
            self.composer.set_text(text)
            return
        self.banner.hide()
        self.chat.add_message("user", text, message_id=user_message.id, versions=(user_message.id,))
        self.conversation_changed.emit(conversation)
        self._start_turn(conversation, user_message, history, web_query, documents)

    def _start_turn(
        self,
        conversation: int,
        user_message: StoredMessage,
        history: Sequence[EarlierMessage],
        web_query: str | None = None,
        documents: SourceMode | None = None,
        *,
        stored: Sequence[Passage] | None = None,
        replaces: int | None = None,
    ) -> None:
        """Answer ``user_message`` (shown last) after ``history``. ``stored``:
        give the model these sources again instead of searching (a regenerated
        answer); ``replaces``: the answer version it is written beside."""
        request = TurnRequest(
            system_prompt=self.settings.system_prompt,
            history=history,
            user_message=user_message.content,
            sampling=SamplingParams(temperature=self.settings.temperature),
        )
        source: ContextSource | None = self.context_source
        grounding = None
        budget = None
        if stored is not None:
            # The same sources as the earlier version, and the same prompt
            # (the system prompt of a turn with a source, the question with
            # them): llama.cpp reuses the whole cached prompt and only the new
            # answer is computed. No second search, nothing new leaves the computer.
            if source is not None or self.grounding is not None:
                source = stored_sources(stored)
        elif source is None and self.grounding is not None:
            grounding = self.grounding.source(web_query, documents)
            source = grounding
            budget = self.grounding.budget()
        self.last_answer = None
        self._show_ask_again()
        turn_id = self.engine.start_turn(request, source, budget)
        self._turn = TurnInFlight(
            turn_id, conversation, user_message, grounding=grounding, replaces=replaces
        )
        self.chat.set_actions_enabled(False)
        self.chat.begin_answer()
        self.composer.set_generating(True)
        self.activity.setText("Thinking…")

    # ------------------------------------------------------------------ versions

    def _turn_can_start(self) -> bool:
        if self._turn is not None or self.conversation_id is None:
            return False
        if not self.models.has_model:
            self.banner.show_message(OPEN_A_MODEL_TEXT, level="info")
            return False
        return True

    def _branch(self) -> list[StoredMessage]:
        if self.conversation_id is None:
            return []
        return self.banner.attempt(self.store.messages, self.conversation_id) or []

    def _show_branch_from(self, index: int, messages: Sequence[StoredMessage]) -> None:
        """Show ``messages`` (the branch) again from its ``index``-th message
        on; those above stay as they are, and so does the view."""
        self.chat.remove_from(index)
        for message in messages[index:]:
            self._add_bubble(message, follow=False)

    @Slot(int)
    def regenerate(self, answer_id: int) -> None:
        """Write another version of this answer, from the same question and
        the same sources; the earlier versions stay (‹ n/m ›)."""
        if not self._turn_can_start():
            return
        branch = self._branch()
        index = next((i for i, m in enumerate(branch) if m.id == answer_id), None)
        if index is None or index == 0 or branch[index].role != "assistant":
            return
        question = branch[index - 1]
        if question.role != "user" or self.conversation_id is None:
            return
        self.banner.hide()
        self._show_branch_from(index, branch[:index])
        history = [m.as_earlier_message() for m in branch[: index - 1]]
        self._start_turn(
            self.conversation_id,
            question,
            history,
            # The passages as the question was sent with them (whole), else
            # as kept with the answer (excerpts, for answers saved before).
            stored=question.sent_sources or branch[index].sources,
            replaces=answer_id,
        )

    @Slot(int, str)
    def edit_and_resend(self, question_id: int, text: str) -> None:
        """Send an edited question as a new version of ``question_id``: the
        conversation branches there, and the earlier branch stays (‹ n/m ›)."""
        text = text.strip()
        if text and self._turn_can_start():
            self._ask_as_new_version(question_id, text, None, None)

    def _ask_as_new_version(
        self,
        question_id: int,
        text: str,
        web_query: str | None,
        documents: SourceMode | None,
    ) -> bool:
        conversation = self.conversation_id
        branch = self._branch()
        index = next((i for i, m in enumerate(branch) if m.id == question_id), None)
        if conversation is None or index is None or branch[index].role != "user":
            return False
        question = self.banner.attempt(
            self.store.add_message,
            conversation,
            "user",
            text,
            parent_id=branch[index].parent_id,
        )
        if question is None:
            return False
        self.banner.hide()
        shown = self._branch()
        self._show_branch_from(index, shown)
        self.chat.scroll_to_bottom()
        self.conversation_changed.emit(conversation)
        history = [m.as_earlier_message() for m in branch[:index]]
        self._start_turn(conversation, shown[-1], history, web_query, documents)
        return True

    @Slot(int)
    def show_version(self, message_id: int) -> None:
        """Show the branch through this version of a message."""
        if self._turn is not None and self._turn.conversation == self.conversation_id:
            return  # the answer being written belongs to the branch shown
        branch = self._branch()
        if self.banner.attempt(self.store.select, message_id) is None:
            return
        shown = self._branch()
        # Redraw from the first message that differs; what is above stays put.
        index = next(
            (i for i, (a, b) in enumerate(zip(branch, shown, strict=False)) if a.id != b.id),
            min(len(branch), len(shown)),
        )
        self._show_branch_from(index, shown)
        self.last_answer = None
        self._show_ask_again()

    def _model_name(self) -> str | None:
        model = self.engine.model
        return model.path.name if model is not None else None

    @Slot()
    def stop(self) -> None:
        if self._turn is not None:
            self.engine.cancel(self._turn.id)
            self._turn.stopping = True
            self.activity.setText(STOPPING_TEXT)

    def _say(self, turn: TurnInFlight, text: str) -> None:
        """The turn's progress in the status line, unless Stop was pressed:
        "Stopping…" stays until the turn has ended."""
        if not turn.stopping:
            self.activity.setText(text)

    @Slot(int, object)
    def _on_turn_event(self, turn_id: int, event: object) -> None:
        turn = self._turn
        if turn is None or turn_id != turn.id:
            return
        visible = turn.conversation is not None and turn.conversation == self.conversation_id
        if isinstance(event, Token):
            turn.pieces.append(event.text)
            self._save_draft(turn)
            if visible:
                self.chat.append_answer(event.text)
            self._say(turn, "Writing…")
        elif isinstance(event, Progress | PromptProgress | Sources):
            self._on_progress(turn, event, visible)
        elif isinstance(event, SourcesDeclined):
            turn.documents_declined = event.reason
            self._say(turn, declined_text(event.reason))
        elif isinstance(event, Notice):
            self.banner.show_message(event.text, level="info")
        elif isinstance(event, Finished):
            self._finish_turn(turn, event, visible)
        elif isinstance(event, Failed):
            if event.partial is not None:
                # A server that failed mid-answer: what it wrote is kept as the
                # answer (footer "Interrupted"), and the banner says why.
                self._finish_turn(turn, event.partial, visible)
                self.banner.show_error(event.error)
            else:
                self._fail_turn(turn, event.error, visible)

    def _on_progress(
        self, turn: TurnInFlight, event: Progress | PromptProgress | Sources, visible: bool
    ) -> None:
        """The status line ("Looking in your documents…", "Searching the web
        for “…”", "Reading 5 sources… 40%") and the sources, before the answer."""
        if isinstance(event, PromptProgress):
            percent = 100 * event.done_tokens // max(event.total_tokens, 1)
            self._say(turn, f"{turn.reading.text} {percent}%")
        elif isinstance(event, Sources):
            turn.sources = tuple(event.passages)
            if visible:
                self.chat.set_streaming_sources(turn.sources)
        else:
            if isinstance(event, ReadingPrompt):
                turn.reading = event
            self._say(turn, event.text)
            if isinstance(event, SearchingWeb) and self.edit_query_button and visible:
                self.edit_query_button.show()  # the query is known: it can be edited now

    def _save_draft(self, turn: TurnInFlight) -> None:
        """Keep the answer being written on disk: on the first token, then at
        most every DRAFT_SAVE_S, so a crash or a kill loses at most that much.
        (A failed save says so in the banner and is retried no sooner.)"""
        now = time.monotonic()
        if turn.conversation is None or now - turn.draft_saved_at < DRAFT_SAVE_S:
            return
        turn.draft_saved_at = now
        if turn.draft is None:
            turn.draft = self.banner.attempt(
                self.store.add_message,
                turn.conversation,
                "assistant",
                "".join(turn.pieces),
                finish_reason=INTERRUPTED,
                parent_id=turn.user_message.id,
                model=self._model_name(),
            )
        else:
            self.banner.attempt(
                self.store.update_message, turn.draft.id, "".join(turn.pieces), INTERRUPTED
            )

    def _finish_turn(self, turn: TurnInFlight, event: Finished, visible: bool) -> None:
        self._end_turn()
        footer = answer_footer(event)
        answer_id: int | None = None
        if turn.draft is not None:
            if event.text:
                answer_id = turn.draft.id
                self.banner.attempt(
                    self.store.update_message, turn.draft.id, event.text, event.reason
                )
                if event.sources:
                    self.banner.attempt(self.store.set_sources, turn.draft.id, event.sources)
            else:
                self.banner.attempt(self.store.delete_message, turn.draft.id)
        elif event.text and turn.conversation is not None:
            saved = self.banner.attempt(
                self.store.add_message,
                turn.conversation,
                "assistant",
                event.text,
                finish_reason=event.reason,
                sources=event.sources,
                parent_id=turn.user_message.id,
                model=self._model_name(),
            )
            answer_id = saved.id if saved is not None else None
        question = turn.user_message
        if turn.conversation is not None and (
            event.sources or question.sent_sources or question.model_content
        ):
            # The question's sources, kept apart from it: the next turn sends
            # the question with them again, exactly as now (KV cache reuse).
            self.banner.attempt(self.store.set_sent_sources, question.id, event.sources)
        versions: tuple[int, ...] = ()
        if answer_id is None and turn.replaces is not None and turn.conversation is not None:
            self._show_again(turn, visible)  # no new version: the one before it, again
            visible = False
        elif answer_id is not None and visible and turn.conversation is not None:
            shown = self.banner.attempt(self.store.messages, turn.conversation) or []
            versions = next((m.versions for m in shown if m.id == answer_id), ())
        if visible:
            self.chat.end_answer(
                event.text, footer, event.sources, message_id=answer_id, versions=versions
            )
        self._remember_answer(turn, answer_id)
        if event.stats.generated_tokens:
            self.speed_label.setText(f"{event.stats.tokens_per_second:.1f} tok/s")
        if event.notes:
            self.banner.show_message(" ".join(event.notes), level="info")

    def _fail_turn(self, turn: TurnInFlight, error: EngineError, visible: bool) -> None:
        self._end_turn()
        self._remember_answer(turn, None)
        if turn.draft is not None:  # errors never stay in the conversation as an answer
            self.banner.attempt(self.store.delete_message, turn.draft.id)
        if turn.replaces is not None and turn.conversation is not None:
            self._show_again(turn, visible)
        elif visible:
            self.chat.end_answer("")
        # Errors go to the banner, never into the conversation as assistant text.
        self.banner.show_error(error)

    def _show_again(self, turn: TurnInFlight, visible: bool) -> None:
        """A regenerate that wrote nothing: the version it was to replace is
        the one shown again."""
        if turn.replaces is None:
            return
        self.banner.attempt(self.store.select, turn.replaces)
        if visible:
            self.chat.end_answer("")
            branch = self._branch()
            self._show_branch_from(len(self.chat.bubbles()), branch)

    def _end_turn(self) -> None:
        self._turn = None
        self.chat.set_actions_enabled(True)
        self.composer.set_generating(False)
        self.activity.setText("")

    # ------------------------------------------------------------------ ask again

    def _remember_answer(self, turn: TurnInFlight, answer_id: int | None) -> None:
        """After a turn that searched the web or whose documents Auto held
        back: keep what "Edit query" / "Use my documents" need, say it in the
        status line, and let the ledger page refresh."""
        searched = turn.grounding.last_search.query if turn.grounding is not None else ""
        rerun, self._rerun = self._rerun, None
        if searched:
            self.web_turn_finished.emit()
        if (not searched and not turn.documents_declined) or turn.conversation is None:
            return
        self.last_answer = AskAgain(
            turn.conversation,
            turn.user_message.content,
            turn.user_message.id,
            answer_id,
            web_query=searched,
            documents_declined=turn.documents_declined,
        )
        self._show_ask_again()
        if rerun:
            self.ask_again(*rerun)

    def _show_ask_again(self) -> None:
        last = self.last_answer
        shown = last is not None and last.conversation == self.conversation_id
        if self.edit_query_button is not None:
            self.edit_query_button.setVisible(shown and last is not None and bool(last.web_query))
        if self.use_documents_button is not None:
            self.use_documents_button.setVisible(
                shown and last is not None and bool(last.documents_declined)
            )
        if shown and last is not None and self._turn is None:
            said = []
            if last.documents_declined:
                said.append(declined_text(last.documents_declined))
            if last.web_query:
                said.append(f"Searched the web for “{last.web_query}”")
            self.activity.setText("  ·  ".join(said))

    def current_web_query(self) -> str:
        """The query of the turn searching now, else of the last one that did."""
        turn = self._turn
        if turn is not None and turn.grounding is not None and turn.grounding.last_search.query:
            return turn.grounding.last_search.query
        return self.last_answer.web_query if self.last_answer is not None else ""

    def rerun_with_query(self, query: str) -> None:
        """Ask the last web-searched question again, searching for ``query``."""
        query = " ".join(query.split())
        if query:
            self.ask_again(query, None)

    def use_documents(self) -> None:
        """Ask the last question again with the documents Auto held back."""
        self.ask_again(None, SourceMode.ALWAYS)

    def ask_again(self, web_query: str | None, documents: SourceMode | None) -> None:
        """Ask the last question again, grounded otherwise, as a new version
        of the exchange (the earlier one stays: ‹ n/m › on the question).
        While that turn is still running, it is stopped first and asked again
        once it has."""
        if self._turn is not None:
            self._rerun = (web_query, documents)
            self.stop()
            return
        last = self.last_answer
        if last is None:
            return
        self.last_answer = None
        if last.conversation != self.conversation_id:
            self.show(last.conversation)
        if not self.models.has_model:
            self.banner.show_message(OPEN_A_MODEL_TEXT, level="info")
            return
        if not self._ask_as_new_version(last.user_message_id, last.question, web_query, documents):
            # Not on the branch shown any more: asked as a new question.
            self.send(last.question, web_query=web_query, documents=documents)
