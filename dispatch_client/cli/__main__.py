"""`python -m dispatch_client.cli`: the same as the `dispatch-client` command."""

from __future__ import annotations

from ._commands import main

if __name__ == "__main__":
    main()
