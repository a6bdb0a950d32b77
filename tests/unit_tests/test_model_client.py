"""Which chat model the model node calls and how, alone (models are built, never called)."""

from __future__ import annotations

from langchain_core.callbacks import AsyncCallbackManager, BaseCallbackHandler
from langchain_core.runnables import RunnableBinding, RunnableConfig
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.constants import TAG_NOSTREAM

from streamagent.accounting.usage import UsageTracker
from streamagent.config import ModelConfig
from streamagent.nodes.model_client import ModelClient, unbind, without_messages_mode
from streamagent.streaming.protocol import AGENT_METADATA_KEY


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


def settings(**kwargs: object) -> ModelConfig:
    return ModelConfig(api_key="sk-test", base_url="http://127.0.0.1:9/v1", **kwargs)  # type: ignore[arg-type]


def built(**kwargs: object) -> ModelClient:
    return ModelClient(llm=None, tools=[echo], settings=settings(**kwargs), name="agent")


def fixed(**kwargs: object) -> tuple[ModelClient, ChatOpenAI]:
    llm = ChatOpenAI(model="given-model", api_key="sk-test", base_url="http://127.0.0.1:9/v1")  # type: ignore[arg-type]
    llm = llm.model_copy(update=kwargs)
    return ModelClient(llm=llm, tools=[echo], settings=settings(), name="agent"), llm


def conf(**configurable: object) -> RunnableConfig:
    return {"configurable": dict(configurable)}


# ---------------------------------------------------------------------- which model
def test_a_given_model_is_always_the_one_called_with_the_tools_bound() -> None:
    client, llm = fixed()
    runnable = client.runnable(conf(model="other"))
    assert runnable is client.runnable(None)
    model, bound = unbind(runnable)
    assert model is llm
    assert [t["function"]["name"] for t in bound["tools"]] == ["echo"]
    assert client.model_for(conf(model="other")) == "gpt-4o"  # the configured name: pricing


def test_a_given_model_without_tools_is_not_bound() -> None:
    llm = ChatOpenAI(model="m", api_key="sk-test", base_url="http://127.0.0.1:9/v1")  # type: ignore[arg-type]
    client = ModelClient(llm=llm, tools=[], settings=settings(), name="agent")
    assert client.runnable(None) is llm


def test_a_built_model_follows_the_run_overrides_one_build_each() -> None:
    client = built()
    default = client.runnable(None)
    mini = client.runnable(conf(model="gpt-4o-mini", temperature=0.5))
    assert client.runnable(conf(temperature=0.5, model="gpt-4o-mini")) is mini  # same overrides
    assert client.runnable(conf(thread_id="t1")) is default  # not an override
    assert mini is not default
    model, _ = unbind(mini)
    assert getattr(model, "model_name", None) == "gpt-4o-mini"
    assert getattr(model, "temperature", None) == 0.5
    assert client.model_for(conf(model="gpt-4o-mini")) == "gpt-4o-mini"
    assert client.model_for(conf(model=42)) == "gpt-4o"  # not a model name


def test_the_output_limit_is_the_given_models_or_the_runs_or_the_configured_one() -> None:
    client, _ = fixed(max_tokens=77)
    assert client.output_limit(conf(max_tokens=5)) == 77
    client, _ = fixed()
    assert client.output_limit(None) is None  # a given model without a limit
    assert built(max_tokens=300).output_limit(None) == 300
    assert built(max_tokens=300).output_limit(conf(max_tokens=5)) == 5


# ---------------------------------------------------------------------- how it is called
def test_call_config_adds_the_agent_tags_and_metadata_without_changing_the_runs() -> None:
    client = built()
    config: RunnableConfig = {"tags": ["mine", "streamagent:agent"], "metadata": {"user": "u1"}}
    call = client.call_config(config)
    assert call["tags"] == ["mine", "streamagent:agent"]  # not twice
    assert call["metadata"] == {"user": "u1", AGENT_METADATA_KEY: "agent"}
    assert config == {"tags": ["mine", "streamagent:agent"], "metadata": {"user": "u1"}}
    assert TAG_NOSTREAM in client.call_config(config, nostream=True)["tags"]
    assert client.call_config(None)["tags"] == ["streamagent:agent"]


class Mine(BaseCallbackHandler):
    pass


def test_call_config_leaves_out_the_usage_tracker_but_keeps_user_callbacks() -> None:
    mine = Mine()
    manager = AsyncCallbackManager(handlers=[mine, UsageTracker()])
    call = built().call_config({"callbacks": manager})
    assert call["callbacks"].handlers == [mine]
    assert len(manager.handlers) == 2  # the run's manager is untouched


def test_without_messages_mode_keeps_callbacks_it_has_nothing_to_remove_from() -> None:
    manager = AsyncCallbackManager(handlers=[Mine()])
    assert without_messages_mode(manager) is manager
    assert without_messages_mode(None) is None


def test_prepared_caps_the_output_only_when_the_budget_asks() -> None:
    client, llm = fixed()
    model, _, kwargs = client.prepared({}, None, max_output_tokens=12)
    assert model is llm and kwargs["max_tokens"] == 12 and "tools" in kwargs
    _, _, kwargs = client.prepared({}, None)
    assert "max_tokens" not in kwargs


def test_prepared_calls_the_runnable_a_middleware_chose() -> None:
    client, _ = fixed()
    other = ChatOpenAI(model="other", api_key="sk-test", base_url="http://127.0.0.1:9/v1")  # type: ignore[arg-type]
    model, _, kwargs = client.prepared({}, other.bind(tool_choice="none"))
    assert model is other and kwargs == {"tool_choice": "none"}


def test_unbind_keeps_a_binding_with_its_own_config() -> None:
    llm = ChatOpenAI(model="m", api_key="sk-test", base_url="http://127.0.0.1:9/v1")  # type: ignore[arg-type]
    configured = llm.bind(stop=["x"]).with_config(tags=["own"])
    assert isinstance(configured, RunnableBinding)
    assert unbind(configured) == (configured, {})
