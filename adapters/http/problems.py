"""Errors as RFC 9457 problem details, and the one mapping from result codes to HTTP statuses.

Every refusal the API gives is a `Problem`: a status, a stable snake_case `code`, a title and a
detail. The engine's result codes map here and nowhere else; codes that only the HTTP layer
knows (authentication, body shape, paging) are listed here too, so the OpenAPI document and the
tests can enumerate every code the API can answer.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapters.http.render import encode
from engine.results import Result

PROBLEM_TYPE = "https://docs.stablerail.dev/problems/"
CONTENT_TYPE = "application/problem+json"

# Codes of the HTTP layer itself, with their status and title.
HTTP_CODES: dict[str, tuple[int, str]] = {
    "unauthorized": (401, "Missing, invalid or revoked API key"),
    "forbidden": (403, "This key's role may not do this"),
    "csrf_invalid": (
        403,
        "A console request that changes anything needs its session's X-CSRF-Token, from this"
        " server's own pages",
    ),
    "not_found": (404, "No such object"),
    "method_not_allowed": (405, "Method not allowed"),
    "body_too_large": (413, "Request body over 64 KiB"),
    "unsupported_media_type": (415, "Request body must be application/json"),
    "body_malformed": (422, "Request body is not a JSON object"),
    "unknown_field": (422, "Request body has a field this endpoint does not take"),
    "field_invalid": (422, "A field is missing or of the wrong type"),
    "parameter_invalid": (422, "A query parameter is invalid"),
    "cursor_invalid": (400, "The cursor is not one this API issued"),
    "idempotency_key_missing": (400, "Idempotency-Key header is required"),
    "idempotency_key_invalid": (400, "Idempotency-Key must be 1 to 255 printable characters"),
    "signature_invalid": (401, "The webhook signature or timestamp does not check out"),
    "provider_unknown": (404, "No inbound webhooks are accepted from this provider"),
    "payload_invalid": (422, "The provider's payload is not one this endpoint understands"),
    "key_revoked": (409, "The API key is revoked"),
    "webhook_url_refused": (422, "The webhook URL is not allowed"),
    "clock_not_virtual": (409, "The clock is real time; only a virtual clock can be advanced"),
    "rails_not_simulated": (404, "This server does not run simulated rails"),
    "policy_invalid": (422, "The rule set has problems; the one in force is unchanged"),
    "sanctions_list_invalid": (
        422,
        "The sanctions list files cannot be read as OFAC publishes them; the list in force is"
        " unchanged",
    ),
    "sanctions_not_configured": (409, "No sanctions list files are configured to reload"),
    "service_unavailable": (503, "The service is not ready or is shutting down"),
    "internal_error": (500, "Internal error"),
}

# Engine results: the HTTP status each maps to (422 unless listed).
_RESULT_STATUS: dict[Result, int] = {
    Result.transfer_not_found: 404,
    Result.idempotency_key_missing: 400,
    Result.idempotency_key_invalid: 400,
    Result.idempotency_key_reused: 422,
    Result.idempotency_request_in_progress: 409,
    Result.version_conflict: 409,
    Result.outcome_unknown: 503,
    Result.transfer_busy: 503,
    Result.transfer_flagged: 409,
    Result.command_invalid_for_status: 409,
    Result.transfer_not_cancellable: 409,
    Result.transfer_not_awaiting_approval: 409,
    Result.approval_duplicate: 409,
    Result.approval_terms_mismatch: 409,
    Result.override_not_pending: 409,
    Result.rebalance_not_found: 404,
    Result.rebalance_not_pending: 409,
    Result.discrepancy_not_found: 404,
    Result.discrepancy_closed: 409,
    Result.discrepancy_proposal_pending: 409,
    Result.discrepancy_no_proposal: 409,
    Result.maker_cannot_approve: 403,
    Result.provider_unavailable: 503,
    Result.chain_unavailable: 503,
}


def result_status(result: Result) -> int:
    assert result is not Result.ok
    return _RESULT_STATUS.get(result, 422)


def _title(code: str) -> str:
    return code.replace("_", " ").capitalize()


class Problem(Exception):
    def __init__(
        self, status: int, code: str, detail: str = "", *, title: str | None = None, **extra: Any
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or _title(code)
        self.extra = extra

    @classmethod
    def http(cls, code: str, detail: str = "", **extra: Any) -> Problem:
        status, title = HTTP_CODES[code]
        return cls(status, code, detail or title, title=title, **extra)

    @classmethod
    def of(cls, result: Result, detail: str = "", **extra: Any) -> Problem:
        return cls(result_status(result), result.code, detail or _title(result.code), **extra)

    def body(self, request_id: str) -> dict[str, Any]:
        found: dict[str, Any] = {
            "type": PROBLEM_TYPE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "request_id": request_id,
        }
        found.update(self.extra)
        return found

    def response(self, request_id: str) -> web.Response:
        return web.Response(
            status=self.status,
            body=encode(self.body(request_id)),
            content_type=CONTENT_TYPE,
        )


def every_code() -> dict[str, int]:
    """Every code the API can answer with, and its status (for the OpenAPI document)."""
    found = {code: status for code, (status, _) in HTTP_CODES.items()}
    for result in Result:
        if result is not Result.ok:
            found[result.code] = result_status(result)
    return found
