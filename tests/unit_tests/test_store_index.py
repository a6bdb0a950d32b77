"""The server-index planner's pure parts: FT.SEARCH / FT.INFO replies in RESP2 and RESP3,
the index check, document ids, and the search config."""

from __future__ import annotations

from typing import Any

import pytest

from streamagent.errors import ConfigurationError, MemoryUnavailable
from streamagent.memory.store_core import prefix_tag, prefix_tags
from streamagent.memory.store_index import (
    ServerIndexPlanner,
    VectorSearchConfig,
    parse_ft_search,
    parse_pairs,
)


class _Planner(ServerIndexPlanner):
    key_prefix = "app:store"
    index_config = None
    vector_search = VectorSearchConfig()
    server_vector_index = True


def test_ft_search_replies_parse_alike_in_resp2_and_resp3() -> None:
    resp2 = [2, b"a", [b"__dist", b"0.25"], b"b", [b"__dist", b"1.5"]]
    resp3 = {
        b"total_results": 2,
        b"results": [
            {b"id": b"a", b"extra_attributes": {b"__dist": b"0.25"}, b"values": []},
            {b"id": b"b", b"extra_attributes": {b"__dist": b"1.5"}, b"values": []},
        ],
        b"warning": [],
    }
    expected = (2, [("a", 0.25), ("b", 1.5)])
    assert parse_ft_search(resp2, "__dist") == parse_ft_search(resp3, "__dist") == expected


def test_a_timed_out_search_is_an_error_not_a_short_answer() -> None:
    reply = {b"total_results": 0, b"results": [], b"warning": [b"Timeout limit was reached"]}
    with pytest.raises(MemoryUnavailable, match="timed out"):
        parse_ft_search(reply, "__dist")


REDISEARCH_INFO = [
    b"index_name", b"app:store:vectors", b"index_options", [],
    b"index_definition", [b"key_type", b"HASH", b"prefixes", [b"app:store:v:"],
                          b"default_score", b"1"],
    b"attributes", [
        [b"identifier", b"vec", b"attribute", b"vec", b"type", b"VECTOR", b"algorithm", b"FLAT",
         b"data_type", b"FLOAT32", b"dim", 8, b"distance_metric", b"COSINE"],
        [b"identifier", b"pfx", b"attribute", b"pfx", b"type", b"TAG", b"SEPARATOR", b","],
    ],
    b"num_docs", 3, b"indexing", 0,
]  # fmt: skip
# valkey-search 1.0 documents its FT.INFO with the vector's settings nested under "index"
# (not run here: no valkey-search binary installs offline)
VALKEY_SEARCH_INFO = [
    b"index_name", b"app:store:vectors", b"index_options", [],
    b"index_definition", [b"key_type", b"HASH", b"prefixes", [b"app:store:v:"],
                          b"default_score", b"1"],
    b"attributes", [
        [b"identifier", b"vec", b"attribute", b"vec", b"type", b"VECTOR", b"index",
         [b"capacity", 10240, b"dimensions", 8, b"distance_metric", b"COSINE", b"size", 3,
          b"data_type", b"FLOAT32", b"algorithm", [b"name", b"FLAT", b"block_size", 1024]]],
        [b"identifier", b"pfx", b"attribute", b"pfx", b"type", b"TAG", b"SEPARATOR", b",",
         b"CASESENSITIVE", 0],
    ],
    b"num_docs", 3, b"state", b"ready",
]  # fmt: skip


@pytest.mark.parametrize("info", [REDISEARCH_INFO, VALKEY_SEARCH_INFO])
def test_the_index_check_accepts_its_own_index_in_either_shape(info: list[Any]) -> None:
    _Planner()._check_index(parse_pairs(info), 8)
    with pytest.raises(ConfigurationError, match="FT.DROPINDEX app:store:vectors"):
        _Planner()._check_index(parse_pairs(info), 16)


def test_an_index_over_other_keys_or_another_metric_is_refused() -> None:
    info = parse_pairs(REDISEARCH_INFO)
    info["index_definition"] = [b"key_type", b"HASH", b"prefixes", [b"elsewhere:"]]
    with pytest.raises(ConfigurationError, match="does not fit"):
        _Planner()._check_index(info, 8)
    info = parse_pairs(REDISEARCH_INFO)
    info["attributes"] = [[b"attribute", b"vec", b"algorithm", b"HNSW", b"dim", 8,
                           b"distance_metric", b"COSINE"], [b"attribute", b"pfx"]]  # fmt: skip
    with pytest.raises(ConfigurationError, match="HNSW"):
        _Planner()._check_index(info, 8)


def test_document_ids_name_namespace_and_key() -> None:
    planner = _Planner()
    doc_id = "app:store:v:{app:store:users.a%7Db}:1:key:with:colons"
    assert planner._parse_id(doc_id) == (("users", "a}b"), "key:with:colons")
    assert planner._parse_id("other:v:{x}:0:k") is None


def test_prefix_tags_name_every_prefix_of_the_namespace() -> None:
    tags = prefix_tags(("users", "ada", "facts")).split(",")
    assert tags == [prefix_tag(("users",)), prefix_tag(("users", "ada")), prefix_tag(
        ("users", "ada", "facts")
    )]  # fmt: skip
    assert len(set(tags)) == 3 and all(len(t) == 16 for t in tags)


def test_the_search_config_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        VectorSearchConfig(path="fast")
    with pytest.raises(ConfigurationError):
        VectorSearchConfig(max_server_results=0)
    with pytest.raises(ConfigurationError):
        VectorSearchConfig(index_build_timeout_seconds=0)
