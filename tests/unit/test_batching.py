"""Batch helpers: the one chunker (sizes, remainder, laziness) and the GC setting for bulk work."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from overstap.batching import chunks, fewer_collections


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


def test_fewer_collections_raises_the_threshold_freezes_and_restores() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with fewer_collections(threshold=123_456):
        assert gc.get_threshold() == (123_456, *before[1:])
        assert gc.get_freeze_count() > 0  # what existed on entry is out of the collections
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle made inside is still collectable
        del garbage
        assert gc.collect() >= 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_fewer_collections_leaves_a_freeze_it_did_not_make() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with fewer_collections():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_fewer_collections_restores_after_an_error() -> None:
    before = gc.get_threshold()

    @fewer_collections()
    def fails() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fails()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
