"""The client side: waiting on a list of the API, one long-poll after another."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.client import wait_for_items
from gateway.web.models import MAX_WAIT


class Answers:
    """A list endpoint that answers with the next prepared page, recording each query."""

    def __init__(self, *pages: list[str]) -> None:
        self.pages = list(pages)
        self.queries: list[Mapping[str, str | int]] = []

    def __call__(self, query: Mapping[str, str | int]) -> list[str]:
        self.queries.append(query)
        return self.pages.pop(0)


def test_wait_for_items_polls_again_until_enough_items_match() -> None:
    answers = Answers([], ["a"], ["b", "a"])
    assert wait_for_items(answers, 2, timeout=60) == ["b", "a"]
    assert [q["wait_for"] for q in answers.queries] == [2, 2, 2]


def test_wait_for_items_asks_for_no_poll_longer_than_the_api_allows() -> None:
    answers = Answers([], ["a"])
    wait_for_items(answers, 1, timeout=3600)
    assert float(answers.queries[0]["timeout"]) == MAX_WAIT


def test_wait_for_items_returns_what_there_is_when_the_time_is_up() -> None:
    answers = Answers(["a"])
    assert wait_for_items(answers, 5, timeout=0) == ["a"]
    assert answers.queries == [{"wait_for": 5, "timeout": "0.000"}]
