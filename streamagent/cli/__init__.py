"""The ``streamagent`` command line: :mod:`~streamagent.cli.app` (commands),
:mod:`~streamagent.cli.terminal` (safe terminal output), :mod:`~streamagent.cli.demo` (the
offline demo) and :mod:`~streamagent.cli.migrate` (``import-chat-history``).

The console script is ``streamagent.cli.app:main``; importing this package imports nothing else.
"""

__all__: list[str] = []
