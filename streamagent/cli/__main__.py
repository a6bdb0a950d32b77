"""``python -m streamagent.cli``: the ``streamagent`` command."""

from streamagent.cli.app import main

main()
