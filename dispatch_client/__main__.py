"""`python -m dispatch_client`: the same as the `dispatch-client` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
