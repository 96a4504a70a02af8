"""`python -m dispatch_client`: the same as the `dispatch-cli` command."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    main()
