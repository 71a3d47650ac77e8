"""Hybrid search (memadmin/memory/ranking.py): the query's words found in a memory's text add to its similarity,
within the scope and the filters like the vector search, with nothing of the query reaching the search syntax;
and an index without a TEXT attribute for the text gets one in place."""

from memadmin.memory import index, ranking, selectors
from memadmin.memory.filters import filter_from_fields
from tests.memadmin.memory import rawhash


def test_only_words_of_the_query_become_terms():
    assert ranking.keyword_terms("How much can I spend per NIGHT, per night?") == ["spend", "night"]
    # Operators, field names, wildcards and quotes of the search syntax are not words: they never pass.
    assert ranking.keyword_terms('@user_id:{bob} | * -"x" %fuzz% (a)') == ["user_id", "bob", "x", "fuzz"]
    assert ranking.keyword_terms("the and of _ __") == []
    assert ranking.keyword_terms("snake_case 10k 200€ naïve 東京") == ["snake_case", "10k", "200", "naïve", "東京"]
    assert len(ranking.keyword_terms(" ".join(f"w{i}" for i in range(100)))) == ranking.MAX_TERMS


def test_fusion_adds_a_bounded_bonus_and_keeps_the_scale():
    assert ranking.fuse(0.4, 0.0) == 0.4
    assert 0.4 < ranking.fuse(0.4, 1.0) < ranking.fuse(0.4, 5.0) < 0.4 + ranking.KEYWORD_WEIGHT
    assert ranking.fuse(0.99, 50.0) == 1.0


def test_a_word_of_the_query_lifts_the_memory_that_holds_it(world, add):
    scope = world.admin(world.acme)
    saturday = add(scope, "concierge_app", "alice", "I run 10k every Saturday morning.")
    add(scope, "concierge_app", "alice", "I prefer morning workouts before 7am.")
    alice = filter_from_fields(user_id="alice")
    vector = {r.id: r.score for r in selectors.memory_search(scope=scope, query="Saturday", filters=alice)}
    hybrid = {
        r.id: r.score
        for r in selectors.memory_search(scope=scope, query="Saturday", filters=alice, keyword_search=True)
    }
    assert vector.keys() == hybrid.keys()
    assert vector[saturday.id] < hybrid[saturday.id] <= vector[saturday.id] + ranking.KEYWORD_WEIGHT
    other = next(i for i in vector if i != saturday.id)
    assert hybrid[other] == vector[other]  # no word of the query in it: its similarity, unchanged


def test_keyword_matches_stay_in_the_scope_and_the_filters(world, add, caplog):
    acme, globex = world.admin(world.acme), world.admin(world.globex)
    mine = add(acme, "concierge_app", "alice", "Booking code ZQX42 for the Lisbon flat.")
    add(acme, "concierge_app", "bob", "Booking code ZQX42 for the Lisbon flat.")
    add(globex, "concierge_app", "alice", "Booking code ZQX42 for the Lisbon flat.")
    queries = ("ZQX42", "@user_id:{bob} | ZQX42 | *", "ZQX42)) | (@user_id:{bob}", "zqx42 snake_case 10k naïve 東京")
    for query in queries:
        found = selectors.memory_search(
            scope=acme, query=query, filters=filter_from_fields(user_id="alice"), keyword_search=True
        )
        assert [r.id for r in found] == [mine.id], query
    everyone = selectors.memory_search(scope=acme, query="ZQX42", keyword_search=True)
    assert {r.user_id for r in everyone} == {"alice", "bob"} and {r.app_id for r in everyone} == {"concierge_app"}
    # An end user's own link: their memories only, words or not.
    own = selectors.memory_search(scope=world.end_user(world.acme, "bob"), query="ZQX42", keyword_search=True)
    assert [r.user_id for r in own] == ["bob"]
    # Every one of those reached the engine as a valid full-text query: none fell back to similarity alone.
    assert "Keyword search unavailable" not in caplog.text


def test_an_index_without_a_text_attribute_gets_one_in_place(world, raw_valkey):
    place = world.acme_concierge.app_ref().place
    collection = place.collection
    command = index.schema(collection)
    at = command.index("memory")
    del command[at : at + 2]  # "memory", "TEXT": an index that cannot search words
    raw_valkey.execute_command(*command)
    held = rawhash.put(raw_valkey, collection, text="Booking code ZQX42 for the Lisbon flat.", user_id="alice")
    assert index.text_type(index.info(place)) is None

    index.ensure(place)
    details = index.info(place)
    assert index.text_type(details) == "TEXT" and index.is_ours(details, collection)
    index.wait_indexed(place, timeout=30)
    # The hash written before the change is found by its words, by the same index (never dropped: still 1 doc).
    assert index.inspect(place).num_docs == 1
    assert _words_counted(world, "ZQX42") == [held]


def test_an_index_holding_the_text_as_a_tag_is_rebuilt_with_a_text_attribute(world, raw_valkey):
    place = world.acme_concierge.app_ref().place
    collection = place.collection
    command = index.schema(collection)
    at = command.index("memory")
    command[at + 1 : at + 2] = ["TAG", "SEPARATOR", "\x1f", "CASESENSITIVE"]  # as Mem0's Valkey store before #5006
    raw_valkey.execute_command(*command)
    held = rawhash.put(raw_valkey, collection, text="Booking code ZQX42 for the Lisbon flat.", user_id="alice")
    assert not index.is_ours(index.info(place), collection)

    index.ensure(place)
    assert index.text_type(index.info(place)) == "TEXT"
    assert _words_counted(world, "ZQX42") == [held]


def _words_counted(world, query: str) -> list[str]:
    """The ids a hybrid search ranks above their similarity alone: those its words were found in."""
    scope = world.admin(world.acme)
    vector = {r.id: r.score for r in selectors.memory_search(scope=scope, query=query)}
    hybrid = selectors.memory_search(scope=scope, query=query, keyword_search=True)
    return [r.id for r in hybrid if r.score > vector[r.id]]
