"""This machine's prompt-reading speed: learnt from turns, remembered per model."""

from __future__ import annotations

import pytest

from engine.llama_internals import cached_count
from engine.model import LocalModel
from engine.prompt_speed import (
    ANCHOR_TOKENS_PER_S,
    KEEP_SAMPLES,
    PromptSpeed,
    default_prompt_speed,
    measure_prompt_speed,
)


def test_default_is_20_tokens_per_second_for_phi3_mini_on_two_cores() -> None:
    assert default_prompt_speed(3.8e9, 2) == pytest.approx(20.0)
    assert default_prompt_speed(3.8e9, 8) == pytest.approx(80.0)  # more cores, faster
    assert default_prompt_speed(14e9, 2) < 6  # Phi-3-medium is ~3.7x the work per token
    assert default_prompt_speed(0, 4) == ANCHOR_TOKENS_PER_S
    assert default_prompt_speed(3.8e9, 2, all_layers_on_gpu=True) > 100


def test_short_evaluations_are_not_samples() -> None:
    speed = PromptSpeed(default_tokens_per_s=20.0)
    assert not speed.record(63, 0.1)
    assert not speed.record(500, 0.0)
    assert speed.tokens_per_s == 20.0 and not speed.measured
    assert speed.record(64, 2.0)
    assert speed.tokens_per_s == 32.0


def test_one_slow_turn_does_not_swing_the_estimate() -> None:
    speed = PromptSpeed()
    for _ in range(4):
        speed.record(400, 20.0)  # 20 tok/s
    speed.record(400, 400.0)  # 1 tok/s: another program was busy
    assert speed.tokens_per_s == 20.0
    for _ in range(KEEP_SAMPLES):
        speed.record(400, 10.0)  # the machine got faster (plugged in)
    assert speed.tokens_per_s == 40.0
    assert len(speed.samples) == KEEP_SAMPLES


def test_round_trips_through_settings() -> None:
    speed = PromptSpeed(default_tokens_per_s=20.0)
    speed.record(200, 4.0)
    speed.record(300, 5.0)
    again = PromptSpeed.from_dict(speed.to_dict())
    assert again == speed
    assert again.tokens_per_s == 55.0


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"version": 99, "samples": [5.0]},
        {"version": 1, "samples": "junk"},
        {"version": 1, "samples": [None]},
    ],
)
def test_unreadable_settings_give_a_fresh_estimate(stored: dict[str, object]) -> None:
    speed = PromptSpeed.from_dict(stored, default_tokens_per_s=33.0)
    assert speed.tokens_per_s == 33.0 and not speed.measured


def test_calibration_reads_a_real_prompt_and_leaves_the_cache_empty(model: LocalModel) -> None:
    assert measure_prompt_speed(model) > 0
    assert cached_count(model.llama) == 0


def test_for_model_guesses_from_the_loaded_model(model: LocalModel) -> None:
    speed = PromptSpeed.for_model(model)
    expected = default_prompt_speed(
        model.info.parameter_count,
        model.threads,
        all_layers_on_gpu=model.gpu_layers < 0 or model.gpu_layers >= model.info.layer_count,
    )
    assert speed.tokens_per_s == expected


def test_a_session_calibrates_and_its_next_turn_still_answers(model: LocalModel) -> None:
    import threading

    from engine.events import Finished
    from engine.synthetic_model import SCRIPTED_ANSWER
    from engine.turn import ChatSession, TurnRequest

    session = ChatSession(model)
    rate = session.calibrate_prompt_speed()
    assert session.prompt_speed.measured
    assert session.prompt_speed.tokens_per_s == pytest.approx(rate)
    events = list(session.run(TurnRequest("", [], "Hello"), threading.Event()))
    assert isinstance(events[-1], Finished) and events[-1].text == SCRIPTED_ANSWER
    assert events[-1].stats.reused_prompt_tokens == 0  # calibration left nothing cached
