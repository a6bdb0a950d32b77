"""Which tool calls need a human's approval: parsing ``require_approval`` into tool metadata.

``tool.metadata[APPROVAL_METADATA_KEY]`` is ``True`` (every call needs approval), a
``frozenset`` of operation names (only calls whose ``operation`` argument is in it, e.g.
``git_operation`` ``commit``), or absent. The tool router reads it and pauses the graph with
``interrupt()`` before such calls run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from langchain_core.tools import BaseTool

from streamagent.errors import ConfigurationError

__all__ = ["APPROVAL_METADATA_KEY", "ApprovalFlag", "mark_approval", "parse_require_approval"]

APPROVAL_METADATA_KEY = "streamagent_approval"
ApprovalFlag = bool | frozenset[str]


def parse_require_approval(
    entries: Iterable[str], operations: Mapping[str, frozenset[str]]
) -> dict[str, ApprovalFlag]:
    """Map ``"tool"`` / ``"tool:operation"`` entries to approval flags per tool name.

    ``operations`` gives, for each known tool, the operation names it accepts (empty when the
    tool has none). Unknown tools or operations raise :class:`ConfigurationError`, so a typo
    never silently turns approval off.

    >>> parse_require_approval(["git_operation:commit", "write_file"],
    ...                        {"write_file": frozenset(), "git_operation": frozenset({"commit"})})
    {'git_operation': frozenset({'commit'}), 'write_file': True}
    """
    if isinstance(entries, str):
        entries = [entries]
    flags: dict[str, ApprovalFlag] = {}
    for entry in entries:
        name, _, operation = entry.partition(":")
        if name not in operations:
            known = ", ".join(sorted(operations))
            raise ConfigurationError(
                f"require_approval names unknown tool {name!r}; known: {known}"
            )
        if not operation:
            flags[name] = True
            continue
        if operation not in operations[name]:
            raise ConfigurationError(
                f"require_approval entry {entry!r}: {name!r} has no operation {operation!r}"
            )
        current = flags.get(name, frozenset())
        if current is not True:
            flags[name] = (
                frozenset({*current, operation})
                if isinstance(current, frozenset)
                else (frozenset({operation}))
            )
    return flags


def mark_approval(tool: BaseTool, flag: ApprovalFlag) -> BaseTool:
    """Set the approval flag in ``tool.metadata`` (in place) and return the tool."""
    if flag is False or flag == frozenset():
        return tool
    tool.metadata = {**(tool.metadata or {}), APPROVAL_METADATA_KEY: flag}
    return tool
