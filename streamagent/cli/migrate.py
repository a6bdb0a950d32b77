"""``streamagent import-chat-history``: RedisChatMessageHistory sessions into agent threads.

Registered on the main CLI by :mod:`streamagent.cli`; the logic lives in
:func:`streamagent.memory.migrate.import_chat_histories`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from streamagent.errors import StreamAgentError

__all__ = ["import_chat_history"]


def import_chat_history(  # noqa: PLR0917 - typer maps options to parameters
    source_url: Annotated[
        str, typer.Option("--source-url", help="Redis holding the RedisChatMessageHistory keys.")
    ],
    key_prefix: Annotated[
        str, typer.Option("--key-prefix", help="Their key prefix.")
    ] = "message_store:",
    session: Annotated[
        list[str] | None, typer.Option("--session", help="Only this session (repeatable).")
    ] = None,
    thread_prefix: Annotated[
        str, typer.Option("--thread-prefix", help="Prefix of the new thread ids.")
    ] = "",
    redis_url: Annotated[
        str | None,
        typer.Option("--redis-url", help="streamagent's Redis (default REDIS_URL or embedded)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; write nothing.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """Import langchain-community RedisChatMessageHistory sessions (idempotent)."""
    import redis

    from streamagent.memory import RedisSaver, default_redis_url
    from streamagent.memory.migrate import import_chat_histories

    try:
        client = redis.Redis.from_url(redis_url or default_redis_url(), socket_timeout=10.0)
        try:
            saver = RedisSaver(client)
            saver.setup()
            report = import_chat_histories(
                source_url=source_url,
                saver=saver,
                key_prefix=key_prefix,
                session_ids=session or None,
                thread_prefix=thread_prefix,
                dry_run=dry_run,
            )
        finally:
            client.close()
    except StreamAgentError as exc:
        typer.echo(f"streamagent: {exc.message}", err=True)
        raise typer.Exit(code=2) from exc
    if json_output:
        rows = [vars(h) for h in report.histories]
        typer.echo(json.dumps({"dry_run": dry_run, "histories": rows}))
        return
    for h in report.histories:
        typer.echo(
            f"{h.session_id} -> thread {h.thread_id}: {h.imported} imported, "
            f"{h.already_present} already present"
        )
    typer.echo(report.summary())
