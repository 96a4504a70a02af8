"""`dispatch-client`: the command line of dispatch-client (the `cli` extra).

A program like any user's: it reaches the library through the public API of
`dispatch_client` (and `dispatch_client.testing` for `serve` and `replay`) only.

- `_commands`: the click group `cli`, its commands and `main()`, the console entry point.
- `_input`: what users type (times, durations, targets, ids, payloads) to domain values.
- `_output`: what the commands print (JSON Lines for scripts, rich tables for people).
"""

from __future__ import annotations

from ._commands import cli, main

__all__ = ["cli", "main"]
