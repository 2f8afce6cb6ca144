"""The budget planner, with numbers: tokens and time."""

from __future__ import annotations

import dataclasses

import pytest

from engine.budget import (
    MIN_CUT_PASSAGE_TOKENS,
    MIN_SOURCE_SHARE,
    MIN_TIME_SOURCE_TOKENS,
    FirstWordTarget,
    PromptSizes,
    TimeBudget,
    cut_passage,
    plan_prompt,
    select_passages,
)
from engine.context import Passage, SourcePassage


def sized(tokens: int, score: float, kind: str = "document", name: str = "") -> SourcePassage:
    """A passage whose text is ``tokens`` words (one token each, see count)."""
    name = name or f"{kind}-{score}"
    return SourcePassage(" ".join([name] * tokens), name, kind, {}, name, score)  # type: ignore[arg-type]


def count(p: Passage) -> int:
    return len(p.text.split())


def sizes(history: list[int], *, cached: int = 0, n_ctx: int = 4096) -> PromptSizes:
    return PromptSizes(
        context_tokens=n_ctx,
        answer_reserve_tokens=512,
        system_tokens=40,
        history_tokens=history,
        question_tokens=100,
        cached_prefix_tokens=cached,
    )


def test_long_history_and_long_sources_always_fit_with_sources_keeping_their_share() -> None:
    long_history = [300] * 20  # 6,000 tokens of earlier exchanges
    plan = plan_prompt(sizes(long_history))
    kept = sum(long_history[plan.dropped_history_units :])
    assert 40 + kept + plan.source_tokens + 100 + 512 <= 4096
    assert plan.source_tokens >= MIN_SOURCE_SHARE * 4096
    # History gave way (oldest first), but not all of it.
    assert 0 < plan.dropped_history_units < 20
    assert kept > 0


def test_before_retrieval_the_cap_is_all_the_room_sources_could_get() -> None:
    plan = plan_prompt(sizes([300] * 20))
    kept = sum([300] * 20) - 300 * plan.dropped_history_units
    assert plan.source_tokens == 4096 - 512 - 40 - 100 - kept
    assert plan.source_tokens >= MIN_SOURCE_SHARE * 4096


def test_a_short_conversation_keeps_all_its_history() -> None:
    plan = plan_prompt(sizes([200, 200]))
    assert plan.dropped_history_units == 0
    assert plan.source_tokens == 4096 - 512 - 40 - 100 - 400
    assert not plan.limited_by_time


def test_time_target_bounds_new_tokens_and_a_cached_prefix_is_free() -> None:
    history = [300] * 6  # 1,800 tokens, all in llama.cpp's cache
    slow = TimeBudget(FirstWordTarget.BALANCED, prompt_tokens_per_s=20.0)  # 500 tokens
    cached = plan_prompt(sizes(history, cached=40 + 1800), time=slow)
    assert cached.limited_by_time
    assert cached.source_tokens == 500 - 100  # the question's own tokens count too
    assert cached.evaluated_tokens == 500

    # The same conversation reopened after a restart: its history must be read
    # (once), which leaves the sources only the floor.
    cold = plan_prompt(sizes(history, cached=0), time=slow)
    assert cold.dropped_history_units == 0  # time never drops history
    assert cold.source_tokens == MIN_TIME_SOURCE_TOKENS


def test_history_left_out_keeps_the_rest_cached_only_if_the_cache_can_shift() -> None:
    history = [300] * 10  # 3,000 tokens, all cached: more than fits beside the sources
    slow = TimeBudget(FirstWordTarget.BALANCED, prompt_tokens_per_s=20.0)  # 500 tokens
    shifting = dataclasses.replace(sizes(history, cached=40 + 3000), cache_shifts=True)
    plan = plan_prompt(shifting, time=slow)
    assert plan.dropped_history_units > 0
    # The kept history is still in the cache (shifted into place): only the
    # question and the sources cost time.
    assert plan.source_tokens == 500 - 100
    assert plan.evaluated_tokens == 500

    rigid = plan_prompt(sizes(history, cached=40 + 3000), time=slow)
    assert rigid.dropped_history_units == plan.dropped_history_units
    assert rigid.source_tokens == MIN_TIME_SOURCE_TOKENS  # the kept history is read again
    assert rigid.evaluated_tokens > 500


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (FirstWordTarget.FAST, 200),
        (FirstWordTarget.BALANCED, 500),
        (FirstWordTarget.THOROUGH, 1200),
    ],
)
def test_first_word_targets_in_tokens_at_20_tokens_per_second(
    target: FirstWordTarget, expected: int
) -> None:
    assert TimeBudget(target, 20.0).max_evaluated_tokens == expected


def test_a_fast_machine_is_limited_by_the_context_not_the_time() -> None:
    quick = TimeBudget(FirstWordTarget.FAST, prompt_tokens_per_s=2000.0)  # 20,000 tokens
    plan = plan_prompt(sizes([300] * 20), time=quick)
    assert not plan.limited_by_time
    assert plan.source_tokens == plan_prompt(sizes([300] * 20)).source_tokens


def test_dropping_history_counts_as_re_reading_what_stays() -> None:
    # 20 exchanges cached, but some must go: every kept one shifts and is re-read.
    plan = plan_prompt(sizes([300] * 20, cached=6040))
    kept = 300 * (20 - plan.dropped_history_units)
    assert plan.source_tokens == 4096 - 512 - 40 - 100 - kept
    # The system prompt is still cached; kept history, question and sources are read.
    assert plan.evaluated_tokens == kept + 100 + plan.source_tokens


def test_the_search_order_is_kept_and_the_bottom_trimmed() -> None:
    """The fused (hybrid) order reaches the prompt as it is: a keyword match
    the search put first stays [1] although its dense cosine is lower."""
    passages = [sized(100, s / 10, name=f"p{s}") for s in (3, 9, 1, 7, 5)]
    chosen = select_passages(passages, 320, count)
    # The first three whole, then the fourth cut to what is left? It is all
    # one sentence of filler: too little of it would stay, so it is trimmed.
    assert [p.score for p in chosen][:3] == [0.3, 0.9, 0.1]
    assert all(p.id in {"p3", "p9", "p1"} for p in chosen)


def test_when_few_whole_passages_fit_the_first_ones_share_the_room() -> None:
    """The answer is often the search's second or third passage: a window of
    each beats all of the first one (bench.grounding)."""
    filler = " ".join(f"Filler sentence number {i} says nothing." for i in range(30))
    first = SourcePassage(filler, "a.md", "document", {}, "a", 0.9)
    second = SourcePassage(
        filler + " The --cid option continues conversation ID. " + filler,
        "b.md",
        "document",
        {},
        "b",
        0.8,
    )
    third = sized(40, 0.7, name="third")
    chosen = select_passages([first, second, third], 260, count, "What does --cid do?")
    assert [p.id for p in chosen] == ["a", "b", "third"]
    assert sum(count(p) for p in chosen) <= 260
    assert "The --cid option continues conversation ID." in chosen[1].text
    assert chosen[1].text.startswith("…")  # cut to the part that bears on --cid
    assert chosen[2].text == third.text  # small enough to stay whole


def test_with_enough_whole_passages_the_next_is_cut_to_what_bears_on_the_question() -> None:
    sentences = " ".join(f"Sentence number {i} is here." for i in range(40))
    long = SourcePassage(
        sentences + " Budgets are approved in March.", "long.md", "document", {}, "long", 0.9
    )
    whole = [sized(50, 0.2, name=f"w{i}") for i in range(3)]
    chosen = select_passages([*whole, long], 200, count, "When are budgets approved?")
    assert [p.id for p in chosen] == ["w0", "w1", "w2", "long"]
    assert chosen[3].text.endswith("Budgets are approved in March.")
    assert count(chosen[3]) <= 50
    # Without a question the beginning is kept, as before.
    plain = select_passages([*whole, long], 200, count)
    assert plain[3].text.startswith("Sentence number 0 is here.")


def test_each_kind_keeps_room_for_its_best_passage() -> None:
    docs = [sized(100, 0.9 - i / 100, "document", f"doc{i}") for i in range(10)]
    pages = [sized(100, 0.5 - i / 100, "web", f"web{i}") for i in range(10)]
    chosen = select_passages(docs + pages, 1000, count)
    kinds = [p.kind for p in chosen]
    assert len(chosen) == 10
    # The order given puts every document first: they fill the room, but the
    # web's best page kept its place, at the end where the search put it.
    assert kinds.count("document") == 9
    assert kinds[-1] == "web" and chosen[-1].id == "web0"
    # A kind whose best passage would take more than its share keeps no room.
    huge_page = sized(400, 0.99, "web", "huge")
    chosen = select_passages([*docs, huge_page], 1000, count)
    assert [p.kind for p in chosen].count("web") == 0


def test_duplicates_keep_their_earlier_copy() -> None:
    a = SourcePassage("Same text.", "a.md", "document", {}, "id-1", 0.2)
    b = SourcePassage("Same   text.", "b.md", "document", {}, "id-2", 0.8)
    c = SourcePassage("Other text.", "c.md", "document", {}, "id-3", 0.5)
    d = SourcePassage("Newer version of it.", "b.md", "document", {}, "id-1", 0.1)
    chosen = select_passages([a, b, c, d], 100, count)
    assert chosen == [a, c]  # b repeats a's text, d repeats a's id


def test_a_single_oversize_passage_is_cut_at_a_sentence_boundary() -> None:
    text = "First sentence here. Second one is longer than that. Third ends it all."
    big = SourcePassage(text, "long.md", "document", {}, "x", 1.0)
    chosen = select_passages([big], 40, lambda p: count(p) * 4)  # the whole: 56 tokens
    [cut] = chosen
    assert cut.text == "First sentence here. Second one is longer than that."
    assert (cut.citation, cut.id, cut.score) == ("long.md", "x", 1.0)


def test_a_passage_without_a_fitting_sentence_is_cut_at_a_word() -> None:
    big = sized(500, 1.0)
    cut = cut_passage(big, 40, count)
    assert cut is not None
    assert cut.text.endswith(" …") and count(cut) <= 40
    assert cut_passage(big, MIN_CUT_PASSAGE_TOKENS - 1, count) is None


def test_nothing_to_select() -> None:
    assert select_passages([], 1000, count) == []
    assert select_passages([sized(10, 1.0)], 0, count) == []


def test_first_word_targets_are_stored_by_name() -> None:
    """Settings and the command line keep the name; the seconds may be retuned."""
    assert FirstWordTarget("balanced") is FirstWordTarget.BALANCED
    assert [t.seconds for t in FirstWordTarget] == [10.0, 25.0, 60.0]


def test_passages_sharing_the_room_do_not_send_the_same_sentence_twice() -> None:
    """Adjacent chunks overlap: the better-ranked passage sends the shared
    sentence, the other its own next best lines."""
    filler = " ".join(f"Filler sentence number {i} says nothing." for i in range(30))
    shared = "The --cid option continues conversation ID."
    first = SourcePassage(f"{filler} {shared} Its own tail.", "a.md", "document", {}, "a", 0.9)
    second = SourcePassage(
        f"{shared} The --cid value is a number. {filler}", "b.md", "document", {}, "b", 0.8
    )
    third = SourcePassage(filler, "c.md", "document", {}, "c", 0.7)
    chosen = select_passages([first, second, third], 300, count, "What does --cid do?")
    assert [p.id for p in chosen] == ["a", "b", "c"]
    assert shared in chosen[0].text
    assert shared not in chosen[1].text
    assert "The --cid value is a number." in chosen[1].text


def test_a_small_budget_shares_fewer_windows_each_big_enough_to_hold_an_answer() -> None:
    """Three windows of a sentence each hold the question's words more often
    than what answers it, which follows them (bench.grounding, Fast)."""
    passages = [sized(200, 0.9 - i / 10, name=f"p{i}") for i in range(4)]
    small = select_passages(passages, 180, count, "What is p0?")
    assert [p.id for p in small] == ["p0", "p1"]  # two windows of ~90, not three of 60
    assert [p.id for p in select_passages(passages, 60, count, "What is p0?")] == ["p0"]
    roomy = select_passages(passages, 300, count, "What is p0?")
    assert [p.id for p in roomy] == ["p0", "p1", "p2"]
