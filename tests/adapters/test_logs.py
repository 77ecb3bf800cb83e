"""Log lines are one JSON object each, carry the fields bound by the code that logs (the request
id above all), and never show a key's or a webhook secret's secret part, wherever it turns up."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest
from loguru import logger

from adapters import logs

KEY = "sk_test_01JD3Z8Q9S7V6W5X4Y3Z2A1B0C_" + "ab" * 32
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(autouse=True)
def default_sink() -> Iterator[None]:
    yield
    logger.remove()
    logger.add(sys.stderr)
    logging.basicConfig(handlers=[], force=True)


def test_a_line_is_json_with_its_context_and_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("DEBUG")
    with logger.contextualize(request_id="rq-1", client_id="acme"):
        logger.bind(transfer_id="tr_x", header=f"Bearer {KEY}").info("saw {}", WHSEC)
        try:
            raise ValueError(f"bad key {KEY}")
        except ValueError:
            logger.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["message"] for line in lines] == ["saw whsec_[redacted]", "failed"]
    first, second = lines
    assert (first["request_id"], first["client_id"], first["transfer_id"]) == (
        "rq-1",
        "acme",
        "tr_x",
    )
    assert first["header"].endswith("_[redacted]")
    assert "ab" * 32 not in second["exception"] and "ValueError" in second["exception"]


def test_standard_library_records_become_json_lines_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("INFO")
    try:
        raise ValueError(f"bad header from {KEY}")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    (line,) = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert (line["level"], line["logger"], line["message"]) == (
        "ERROR",
        "aiohttp.server",
        "Error handling request",
    )
    assert "ValueError" in line["exception"] and "ab" * 32 not in line["exception"]


def test_redact_keeps_what_identifies_and_drops_the_secret() -> None:
    assert logs.redact(KEY) == "sk_test_01JD3Z8Q9S7V6W5X4Y3Z2A1B0C_[redacted]"
    assert logs.redact("nothing secret here") == "nothing secret here"
