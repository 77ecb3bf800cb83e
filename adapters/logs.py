"""Logs: loguru, one JSON object per line on stderr, carrying the correlation fields bound by
the code that logs (request_id, transfer_id, client_id, actor). Secrets are never passed to a log
call; `redact` is a second line of defence for anything that looks like one."""

from __future__ import annotations

import logging
import re
import sys
import traceback
from typing import Any

import msgspec
from aiohttp.http_exceptions import HttpProcessingError
from loguru import logger

_SECRET = re.compile(r"(sk_(?:test|live)_[0-9A-Z]{26}_)[0-9a-f]{64}|(whsec_)[A-Za-z0-9+/=]{8,}")
_encoder = msgspec.json.Encoder()


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "[redacted]", text)


def _sink(message: Any) -> None:
    record = message.record
    line: dict[str, Any] = {
        "ts": record["time"].isoformat(),
        "level": record["level"].name,
        "message": redact(record["message"]),
        "logger": record["extra"].get("logger", record["name"]),
    }
    for key, value in record["extra"].items():
        if key == "logger":
            continue
        line[key] = redact(value) if isinstance(value, str) else value
    if record["exception"] is not None:
        kind, value, trace = record["exception"]
        line["exception"] = redact("".join(traceback.format_exception(kind, value, trace)))
    sys.stderr.write(_encoder.encode(line).decode() + "\n")
    sys.stderr.flush()


class _Forward(logging.Handler):
    """Standard-library log records (aiohttp's own: a malformed request, a server error) go
    through the same sink, so every line stays one JSON object."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and level == "ERROR":
            level = "WARNING"  # a client's malformed request (answered 400), not our fault
        logger.opt(exception=record.exc_info).bind(logger=record.name).log(
            level, record.getMessage()
        )


def configure(level: str = "INFO") -> None:
    logger.remove()
    logger.add(_sink, level=level, format="{message}", backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[_Forward()], level=logging.INFO, force=True)
