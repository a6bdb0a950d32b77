"""The usage tracker of other models' calls, and its absence from streamagent's own calls."""

from __future__ import annotations

from uuid import uuid4

from langchain_core.callbacks import AsyncCallbackManager, StdOutCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from streamagent.accounting.usage import UsageTracker, agent_of_metadata, without_tracker


def test_streamagent_calls_are_not_dispatched_to_the_tracker() -> None:
    tracker, other = UsageTracker(), StdOutCallbackHandler()
    manager = AsyncCallbackManager(handlers=[tracker, other], inheritable_handlers=[tracker, other])
    trimmed = without_tracker(manager)
    assert trimmed.handlers == [other] and trimmed.inheritable_handlers == [other]
    assert manager.handlers == [tracker, other]  # the run's manager is left as it was
    plain = AsyncCallbackManager(handlers=[other])
    assert without_tracker(plain) is plain and without_tracker(None) is None


def test_own_calls_are_skipped_and_unknown_usage_is_unknown_cost() -> None:
    tracker = UsageTracker()
    own, other = uuid4(), uuid4()
    tracker.on_chat_model_start({}, [[]], run_id=own, tags=["streamagent:agent"], metadata={})
    tracker.on_chat_model_start({}, [[]], run_id=other, metadata={"langgraph_node": "summarise"})
    reply = ChatGeneration(message=AIMessage("x"))  # no usage_metadata
    tracker.on_llm_end(LLMResult(generations=[[reply]]), run_id=own)
    tracker.on_llm_end(LLMResult(generations=[[reply]]), run_id=other)
    assert list(tracker.by_agent) == ["summarise"]
    assert tracker.by_agent["summarise"].usage.requests == 1
    assert tracker.by_agent["summarise"].cost_usd is None
    assert tracker.totals().cost_usd is None


def test_the_agent_is_the_top_node_of_the_namespace() -> None:
    assert agent_of_metadata({"langgraph_checkpoint_ns": "writer:1|model:2"}) == "writer"
    assert agent_of_metadata({"langgraph_node": "summarise"}) == "summarise"
    assert agent_of_metadata(None) == "model"
