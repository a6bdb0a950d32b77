"""The store's pure parts: namespace validation, key layout, JSON values, filters, vectors."""

from __future__ import annotations

import math

import pytest
from langgraph.store.base import InvalidNamespaceError
from langgraph.store.memory import _compare_values

from streamagent.errors import InvalidInputError
from streamagent.memory.store_core import (
    CompiledFilter,
    NamespaceKeys,
    StoreInputError,
    StoreNamespaceError,
    decode_doc,
    encode_value,
    matches_filter,
    namespace_matches,
    validate_filter,
    validate_namespace,
)
from streamagent.memory.store_vectors import MergedVectors, NamespaceVectors, pack_vectors
from streamagent.testing.embeddings import HashEmbeddings, cosine


@pytest.mark.parametrize("bad", [(), ("",), ("a.b",), ("a", "x\x00"), ("a", 1), "users"])
def test_invalid_namespaces_are_typed_errors(bad: object) -> None:
    with pytest.raises(StoreNamespaceError) as info:
        validate_namespace(bad)
    assert isinstance(info.value, InvalidNamespaceError | InvalidInputError)
    assert isinstance(info.value, InvalidNamespaceError) and isinstance(
        info.value, InvalidInputError
    )


def test_key_names_are_injective_and_share_one_tag() -> None:
    a = NamespaceKeys.of("p", ("a}:d",))
    b = NamespaceKeys.of("p", ("a",))
    assert a.doc("k") != b.doc("}:d:k")
    assert a.tag == "{p:a%7D:d}" and a.doc("k").startswith(a.tag) and a.idx.startswith(a.tag)
    assert NamespaceKeys.of("p", ("x%7D",)).tag != NamespaceKeys.of("p", ("x}",)).tag


@pytest.mark.parametrize("value", [{"a": {1, 2}}, {"a": math.nan}, {"a": object()}, [1], {1: "x"}])
def test_non_json_values_are_refused(value: object) -> None:
    with pytest.raises(StoreInputError):
        encode_value(value)


def test_docs_round_trip_with_newlines_in_values() -> None:
    body = encode_value({"text": "two\nlines", "n": 1})
    doc = decode_doc("k", f"60000\n1\n2\n{body}".encode())
    assert (doc.value, doc.ttl_ms, doc.created_us, doc.updated_us) == (
        {"text": "two\nlines", "n": 1},
        60000,
        1,
        2,
    )


@pytest.mark.parametrize(
    "bad",
    [{"n": {"$in": [1]}}, {"n": {"$gt": "3"}}, {"n": {"$lt": None}}, {"a": {"b": {"$regex": "x"}}}],
)
def test_unknown_operators_and_bad_operands_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(StoreInputError):
        validate_filter(bad)


VALUES = [
    {"n": 3, "s": "x", "meta": {"tag": "t1"}, "tags": ["a", "b"]},
    {"n": 0, "s": "y", "meta": {"tag": "t2"}, "tags": ["a"]},
    {"n": 5.5, "s": "x"},
]
FILTERS = [
    {"s": "x"},
    {"n": {"$gt": 2}},
    {"n": {"$gte": 3, "$lte": 5.5}},
    {"n": {"$lt": 1}},
    {"n": {"$ne": 3}},
    {"n": {"$eq": 0}},
    {"meta": {"tag": "t1"}},
    {"tags": ["a"]},
    {"s": "x", "n": {"$gt": 4}},
]


@pytest.mark.parametrize("flt", FILTERS)
def test_filters_agree_with_in_memory_store(flt: dict[str, object]) -> None:
    compiled = CompiledFilter(flt)
    for value in VALUES:
        try:
            expected = all(_compare_values(value.get(k), v) for k, v in flt.items())
        except TypeError:  # InMemoryStore raises on an ordering of a missing field
            expected = False
        assert matches_filter(value, flt) == expected == compiled(value), (flt, value)


def test_namespace_match_conditions_with_wildcards() -> None:
    ns = ("users", "ada", "facts")
    assert namespace_matches(ns, "prefix", ("users", "*"))
    assert namespace_matches(ns, "suffix", ("*", "facts"))
    assert not namespace_matches(ns, "prefix", ("users", "bob"))
    assert not namespace_matches(("a",), "prefix", ("a", "b"))
    with pytest.raises(StoreInputError):
        namespace_matches(ns, "infix", ("a",))


def test_vectors_score_by_cosine_max_pooled_per_item() -> None:
    two = b"".join(pack_vectors([[1.0, 0.0], [0.0, 1.0]], dims=2))
    one = b"".join(pack_vectors([[1.0, 1.0]], dims=2))
    entry = NamespaceVectors.build("v", [("two", two), ("one", one), ("none", None)], dims=2)
    # keys in order (ties between items break by key), unscored ones apart
    assert entry.scored_keys == ["one", "two"] and entry.scoreless_keys == ["none"]
    scores = [float(s) for s in entry.scores([0.0, 3.0])]
    assert scores[1] == pytest.approx(1.0) and scores[0] == pytest.approx(math.sqrt(0.5))
    with pytest.raises(StoreInputError):
        pack_vectors([[1.0, 2.0, 3.0]], dims=2)
    with pytest.raises(StoreInputError):
        entry.scores([1.0])


def test_zero_vectors_are_not_packed() -> None:
    assert pack_vectors([[0.0, 0.0], [0.0, 2.0], [-0.0, 0.0]], dims=2) == pack_vectors(
        [[0.0, 2.0]], dims=2
    )
    assert pack_vectors([[0.0, 0.0]], dims=2) == []


def test_merged_namespaces_score_as_each_namespace_does() -> None:
    embed = HashEmbeddings(dims=16)
    parts = []
    for n, texts in enumerate([["red apple", "green pear"], [], ["tea", "black tea", "apple tea"]]):
        pairs = [
            (f"k{i}", b"".join(pack_vectors(embed.embed_documents([t]), dims=16)))
            for i, t in enumerate(texts)
        ]
        parts.append(NamespaceVectors.build(str(n), pairs, dims=16))
    merged = MergedVectors.build(parts)
    assert merged.matches(parts) and not merged.matches(parts[:2])
    assert not merged.matches([parts[0], parts[1], NamespaceVectors.build("x", [], dims=16)])
    query = embed.embed_query("apple tea")
    expected = [float(s) for p in parts for s in p.scores(query)]
    assert [float(s) for s in merged.scores(query)] == pytest.approx(expected, abs=1e-6)
    assert MergedVectors.fits(parts) and not MergedVectors.fits(parts[:1])


def test_hash_embeddings_are_deterministic_and_word_based() -> None:
    embed = HashEmbeddings(dims=64)
    a, b, c = embed.embed_documents(["black coffee", "Coffee, black!", "rainy Oslo"])
    assert a == b == embed.embed_query("black coffee")
    assert cosine(a, b) == pytest.approx(1.0) and cosine(a, c) < 0.5
