"""The one chunker every bulk service uses: sizes, remainder, laziness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from overstap.batching import chunks


def test_cuts_into_full_chunks_and_a_remainder() -> None:
    assert list(chunks(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_empty_input_gives_no_chunks() -> None:
    assert list(chunks([], 5)) == []


def test_reads_no_further_than_the_chunk_it_yields() -> None:
    pulled: list[int] = []

    def source() -> Iterator[int]:
        for n in range(1_000):
            pulled.append(n)
            yield n

    first = next(chunks(source(), 10))
    assert first == list(range(10))
    assert len(pulled) == 10


def test_refuses_a_size_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        next(chunks([1], 0))
