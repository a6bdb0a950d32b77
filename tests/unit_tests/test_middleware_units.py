"""Pure parts of the middleware support: hook discovery, merged schemas, the recursion limit,
and the stream translator leaving a middleware's own model tokens out of the agent's answer."""

from __future__ import annotations

from typing import Annotated, Any, NotRequired, get_type_hints

from langchain.agents.middleware import AgentMiddleware, AgentState, before_model, hook_config
from langchain.agents.middleware.types import PrivateStateAttr
from langchain_core.messages import AIMessageChunk

from streamagent.middleware import MiddlewareStack, recursion_limit
from streamagent.middleware._schema import merged_schemas
from streamagent.middleware._stack import can_jump_to
from streamagent.state import AgentState as StreamAgentState
from streamagent.streaming import ChunkTranslator


class Secret(AgentState):
    secret: NotRequired[Annotated[int, PrivateStateAttr]]
    shown: NotRequired[str]


class Both(AgentMiddleware[Secret]):
    state_schema = Secret

    @hook_config(can_jump_to=["end", "tools"])
    def after_model(self, state: Any, runtime: Any) -> None:
        return None

    async def awrap_tool_call(self, request: Any, handler: Any) -> Any:
        return await handler(request)


@before_model
def only_before(state: Any, runtime: Any) -> None:
    return None


def test_the_stack_sorts_middleware_by_the_hooks_they_override() -> None:
    both = Both()
    stack = MiddlewareStack.of([both, only_before])
    assert stack.with_hook("after_model") == (both,)
    assert stack.with_hook("before_model") == (only_before,)
    assert stack.with_hook("wrap_tool_call") == (both,)  # the async override counts
    assert stack.with_hook("wrap_model_call") == ()
    assert can_jump_to(both, "after_model") == ["end", "tools"]
    assert can_jump_to(only_before, "before_model") == []


def test_merged_schema_keeps_streamagents_reducers_and_hides_private_keys() -> None:
    state, inputs, outputs = merged_schemas([Secret, StreamAgentState])
    hints = get_type_hints(state, include_extras=True)
    assert {"secret", "shown", "jump_to", "usage", "cost_usd", "messages"} <= set(hints)
    # streamagent's state comes last and wins the shared key
    assert hints["messages"] == get_type_hints(StreamAgentState, include_extras=True)["messages"]
    assert "secret" not in get_type_hints(inputs) and "secret" not in get_type_hints(outputs)
    assert "jump_to" not in get_type_hints(inputs)
    assert "shown" in get_type_hints(inputs) and "shown" in get_type_hints(outputs)


def test_recursion_limit_counts_per_step_and_once_hooks() -> None:
    nodes = ["prune", "model", "tools"]
    assert recursion_limit(nodes, max_steps=12) == 12 * 3 + 3  # AgentConfig's own formula
    hooked = [*nodes, "a.before_model", "b.after_model", "a.before_agent", "a.after_agent"]
    assert recursion_limit(hooked, max_steps=12) == 12 * 5 + 3 + 2


def test_tokens_of_a_model_inside_a_middleware_hook_are_not_the_agents_answer() -> None:
    translator = ChunkTranslator()
    chunk = AIMessageChunk(content="a summary")
    hook = {"langgraph_node": "SummarizationMiddleware.before_model"}
    assert translator.feed((), "messages", (chunk, hook)) == []
    other = translator.feed((), "messages", (chunk, {"langgraph_node": "writer"}))
    assert [c.content for c in other] == ["a summary"]  # a user's own node still streams
    agent = translator.feed((), "messages", (chunk, {"streamagent_agent": "agent"}))
    assert [(c.content, c.agent) for c in agent] == [("a summary", "agent")]
