"""The package's logger, with `logging` imported on its first use rather than with us.

`logging` (with `traceback`, `string` and their imports) is a tenth of a bare
`import dispatch_client`, and the library logs only when a stream reconnects or fails.
A program that configures logging has imported it already and loses nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    import logging

__all__ = ["LOGGER_NAME", "logger"]

LOGGER_NAME: Final = "dispatch_client"


class _LazyLogger:
    """Stands for `logging.getLogger(name)`: imports logging at the first attribute use.

    Attributes are looked up on the real logger and kept here, so after the first call
    of each method (`warning`, `isEnabledFor`, ...) the proxy costs one attribute read.
    The logger itself is fetched once: `logging.getLogger` always returns the same
    object for a name, and a level set on it later still applies (methods read it).
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        # Only called for names not found on the proxy: the first use of each.
        import logging

        value = getattr(logging.getLogger(self._name), attribute)
        if callable(value):
            # Bound methods of the one logger object stay valid; plain values (a level,
            # a handler list) may change, so they are read afresh every time.
            setattr(self, attribute, value)
        return value

    def __repr__(self) -> str:
        return f"<lazy logger {self._name!r}>"


logger: Final = cast("logging.Logger", _LazyLogger(LOGGER_NAME))
"""The `dispatch_client` logger (a `logging.Logger` to callers and to mypy)."""
