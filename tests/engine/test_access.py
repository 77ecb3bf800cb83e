"""API keys and roles: the key format round-trips, a key is checked by its secret's hash (and
refused when revoked, of another environment or wrong), and the role table grants exactly what
API.md lists."""

from __future__ import annotations

import pytest

from engine import access
from engine.access import ApiKey, Permission, Role

KEY_ID = "ak_01JD3Z8Q9S7V6W5X4Y3Z2A1B0C"
SECRET = bytes(range(32))


def stored(**changes: object) -> tuple[ApiKey, access.ParsedKey]:
    text = access.format_key("test", KEY_ID, SECRET)
    parsed = access.parse_key(text)
    assert parsed is not None
    fields: dict[str, object] = {
        "key_id": KEY_ID,
        "client_id": "acme",
        "role": Role.INITIATOR,
        "user": "alice",
        "env": "test",
        "secret_sha256": access.secret_digest(parsed.secret),
        "created_at": 0,
    }
    fields.update(changes)
    return ApiKey(**fields), parsed  # type: ignore[arg-type]


def test_a_key_round_trips_and_only_its_hash_is_needed() -> None:
    text = access.format_key("test", KEY_ID, SECRET)
    assert text.startswith("sk_test_01JD3Z8Q9S7V6W5X4Y3Z2A1B0C_")
    parsed = access.parse_key(text)
    assert parsed is not None and parsed.key_id == KEY_ID and parsed.env == "test"
    key, parsed = stored()
    assert SECRET.hex() not in key.secret_sha256
    principal = access.check(key, parsed)
    assert principal is not None and principal.client_id == "acme" and principal.user == "alice"


_BODY = "01JD3Z8Q9S7V6W5X4Y3Z2A1B0C"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sk_test_nope_nope",
        "Bearer x",
        f"sk_prod_{_BODY}_" + "0" * 64,
        f"sk_test_{_BODY}_" + "0" * 63,
        f"sk_test_{_BODY}_" + "G" * 64,
        "x" * 1000,
    ],
)
def test_malformed_keys_do_not_parse(text: str) -> None:
    assert access.parse_key(text) is None


def test_revoked_wrong_env_wrong_secret_and_unknown_keys_are_refused() -> None:
    key, parsed = stored(revoked_at=5)
    assert access.check(key, parsed) is None
    key, parsed = stored(env="live")
    assert access.check(key, parsed) is None
    key, parsed = stored(secret_sha256=access.secret_digest("f" * 64))
    assert access.check(key, parsed) is None
    _, parsed = stored()
    assert access.check(None, parsed) is None


def test_the_role_table_is_api_md() -> None:
    expected = {
        Role.VIEWER: {Permission.READ},
        Role.INITIATOR: {Permission.READ, Permission.INITIATE},
        Role.APPROVER: {Permission.READ, Permission.APPROVE},
        # admin: "keys, webhook endpoints, the client's own limits".
        Role.ADMIN: {Permission.READ, Permission.MANAGE, Permission.KEYS},
        # operator: the ops endpoints, all clients (their keys too), the policy rules.
        Role.OPERATOR: {Permission.READ, Permission.OPERATE, Permission.KEYS, Permission.POLICY},
        # auditor: read everything (the policy rules too), the audit log.
        Role.AUDITOR: {Permission.READ, Permission.AUDIT, Permission.POLICY},
    }
    for role in Role:
        for permission in Permission:
            assert access.allowed(role, permission) == (permission in expected[role]), (
                role,
                permission,
            )
    assert {Role.OPERATOR, Role.AUDITOR} == access.STAFF_ROLES


def test_a_client_principal_sees_only_its_own_client() -> None:
    key, parsed = stored()
    principal = access.check(key, parsed)
    assert principal is not None
    assert principal.sees("acme") and not principal.sees("globex")
    staff, parsed = stored(client_id=None, role=Role.OPERATOR)
    operator = access.check(staff, parsed)
    assert operator is not None and operator.sees("acme") and operator.sees("globex")


def principal(client_id: str | None, role: Role) -> access.Principal:
    return access.Principal(key_id="ak_x", client_id=client_id, role=role, user="u")


@pytest.mark.parametrize(
    ("grantor", "client_id", "role", "refused"),
    [
        (principal("acme", Role.ADMIN), "acme", Role.INITIATOR, False),
        (principal("acme", Role.ADMIN), "acme", Role.ADMIN, False),
        (principal("acme", Role.ADMIN), "globex", Role.VIEWER, True),
        (principal("acme", Role.ADMIN), None, Role.OPERATOR, True),
        (principal(None, Role.OPERATOR), "globex", Role.APPROVER, False),
        (principal(None, Role.OPERATOR), None, Role.OPERATOR, True),
        (principal(None, Role.OPERATOR), None, Role.VIEWER, True),
        (principal(None, Role.OPERATOR), None, Role.AUDITOR, True),
    ],
)
def test_no_key_grants_a_staff_key_or_another_clients_key(
    grantor: access.Principal, client_id: str | None, role: Role, refused: bool
) -> None:
    assert (access.grant_refusal(grantor, client_id, role) is not None) is refused


@pytest.mark.parametrize(
    ("client_id", "role", "user", "refused"),
    [
        ("acme", Role.VIEWER, "vera", False),
        (None, Role.AUDITOR, "audrey", False),
        ("acme", Role.OPERATOR, "o", True),
        (None, Role.VIEWER, "v", True),
        ("bad client!", Role.VIEWER, "v", True),
        ("acme", Role.VIEWER, "", True),
        ("x" * 65, Role.VIEWER, "v", True),
    ],
)
def test_key_fields_are_checked(
    client_id: str | None, role: Role, user: str, refused: bool
) -> None:
    assert (access.key_refusal(client_id, role, user) is not None) is refused
