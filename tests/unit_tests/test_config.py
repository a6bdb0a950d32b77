from __future__ import annotations

import pytest

from streamagent.config import (
    AgentConfig,
    ModelConfig,
    PruningConfig,
    RetryConfig,
    create_openai_config,
)
from streamagent.errors import ConfigurationError, RateLimitedError


def test_model_config_reads_key_and_base_url_from_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    cfg = ModelConfig()
    assert cfg.api_key == "sk-from-env-123456789"
    assert cfg.base_url == "http://127.0.0.1:9/v1"
    assert "sk-from-env" not in repr(cfg), "the key never shows in repr"


def test_defaults_match_the_typescript_service():
    cfg = ModelConfig(api_key="k")
    assert (cfg.model, cfg.max_tokens, cfg.temperature) == ("gpt-4o", 4096, 0.1)
    assert cfg.timeout_seconds > 0


@pytest.mark.parametrize(
    ("model", "window"),
    [("gpt-4o", 128_000), ("gpt-4o-mini", 128_000), ("gpt-4.1-nano", 1_047_576), ("gpt-4", 8_192)],
)
def test_known_context_windows(model, window):
    assert ModelConfig(model=model, api_key="k").resolved_context_window() == window


def test_unknown_model_gets_conservative_window_and_one_warning(caplog):
    cfg = ModelConfig(model="my-local-model-xyz", api_key="k")
    with caplog.at_level("WARNING"):
        assert cfg.resolved_context_window() == 8192
        cfg.resolved_context_window()
    assert sum("my-local-model-xyz" in r.message for r in caplog.records) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout_seconds": 0},
        {"max_tokens": 0},
        {"temperature": 3.0},
        {"context_window": 100, "max_tokens": 200},
        {"model": ""},
    ],
)
def test_invalid_model_config_is_a_clear_configuration_error(kwargs):
    with pytest.raises(ConfigurationError):
        ModelConfig(api_key="k", **kwargs)


def test_missing_key_and_base_url_explained_in_one_line(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError) as err:
        ModelConfig().require_endpoint()
    assert "OPENAI_API_KEY" in str(err.value) and "\n" not in str(err.value)


def test_retry_and_pruning_validation():
    with pytest.raises(ConfigurationError):
        RetryConfig(max_retries=-1)
    with pytest.raises(ConfigurationError):
        RetryConfig(backoff_factor=0.5)
    with pytest.raises(ConfigurationError):
        PruningConfig(policy="drop")  # type: ignore[arg-type]
    assert RetryConfig().is_retryable(RateLimitedError("x"))


def test_agent_config_recursion_limit_follows_max_steps():
    cfg = AgentConfig(max_steps=5, require_approval={"write_file"})  # type: ignore[arg-type]
    assert cfg.recursion_limit == 18
    assert cfg.require_approval == frozenset({"write_file"})


def test_create_openai_config_accepts_typescript_field_names():
    cfg = create_openai_config(
        apiKey="sk-x",
        baseURL="http://h/v1",
        model="gpt-4o-mini",
        maxTokens=100,
        temperature=0.5,
        presencePenalty=0.1,
        frequencyPenalty=0.2,
        timeout=12_000,
        maxRetries=5,
        retryDelay=250,
    )
    assert cfg.model.base_url == "http://h/v1" and cfg.model.max_tokens == 100
    assert cfg.model.timeout_seconds == 12.0
    assert cfg.retry.max_retries == 5 and cfg.retry.initial_delay_seconds == 0.25


def test_create_openai_config_rejects_unknown_options():
    with pytest.raises(ConfigurationError, match="bogus"):
        create_openai_config(apiKey="k", bogus=1)
