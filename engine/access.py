"""Who may do what: API keys, roles and the permission each route needs (API.md, Series 3).

A key reads `sk_<env>_<key id body>_<secret>`: the key id names the stored record, the secret is
64 hex digits (256 bits from the entropy port) of which only a sha256 is stored. Checking a key
compares the hashes in constant time, so a wrong secret takes as long as a right one.

The role table is data, deny by default: a route names one permission, a role holds a set, and
`allowed` is the only place that answers. Client roles act for their own client only; staff roles
(no client) see every client.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re

import msgspec

from engine.ids import is_id
from engine.ledger import is_name
from engine.limits import client_id_length_max
from engine.transfer import is_user


class Role(enum.StrEnum):
    VIEWER = "viewer"
    INITIATOR = "initiator"
    APPROVER = "approver"
    ADMIN = "admin"
    OPERATOR = "operator"
    AUDITOR = "auditor"


STAFF_ROLES = frozenset({Role.OPERATOR, Role.AUDITOR})


class Permission(enum.StrEnum):
    # Read the client's own objects (staff: every client's).
    READ = "read"
    # Quotes, create and cancel transfers.
    INITIATE = "initiate"
    # Approve or reject transfers awaiting approval.
    APPROVE = "approve"
    # API keys, webhook endpoints, the client's own limits.
    MANAGE = "manage"
    # The ops endpoints and the simulated rails' controls.
    OPERATE = "operate"
    # The audit log.
    AUDIT = "audit"
    # Create, list, revoke and rotate client API keys (a client admin: its own client's).
    KEYS = "keys"
    # Read the control plane's rules: the policy rule set (any version) and its dry run, the
    # sanctions list in force.
    POLICY = "policy"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.INITIATOR: frozenset({Permission.READ, Permission.INITIATE}),
    Role.APPROVER: frozenset({Permission.READ, Permission.APPROVE}),
    Role.ADMIN: frozenset({Permission.READ, Permission.MANAGE, Permission.KEYS}),
    Role.OPERATOR: frozenset(
        {Permission.READ, Permission.OPERATE, Permission.KEYS, Permission.POLICY}
    ),
    Role.AUDITOR: frozenset({Permission.READ, Permission.AUDIT, Permission.POLICY}),
}
assert set(ROLE_PERMISSIONS) == set(Role)


def allowed(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A stored key: never its secret, only the secret's sha256."""

    key_id: str
    client_id: str | None
    role: Role
    user: str
    env: str
    secret_sha256: str
    created_at: int
    revoked_at: int | None = None

    @property
    def staff(self) -> bool:
        return self.client_id is None


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who a request acts as, once its key checked out."""

    key_id: str
    client_id: str | None
    role: Role
    user: str

    @property
    def staff(self) -> bool:
        return self.client_id is None

    def sees(self, client_id: str) -> bool:
        """Whether an object of `client_id` exists for this principal (else it is a 404)."""
        return self.client_id is None or self.client_id == client_id


ENVS = frozenset({"test", "live"})
_KEY = re.compile(r"sk_(test|live)_([0-9A-HJKMNP-TV-Z]{26})_([0-9a-f]{64})")
SECRET_BYTES = 32


class ParsedKey(msgspec.Struct, frozen=True, kw_only=True):
    env: str
    key_id: str
    secret: str


def parse_key(text: str) -> ParsedKey | None:
    """The parts of a well-formed key, else None (any malformed key is simply unauthorized)."""
    if not isinstance(text, str) or len(text) > 128:
        return None
    match = _KEY.fullmatch(text)
    if match is None:
        return None
    return ParsedKey(env=match.group(1), key_id="ak_" + match.group(2), secret=match.group(3))


def format_key(env: str, key_id: str, secret: bytes) -> str:
    assert env in ENVS and is_id(key_id, "ak") and len(secret) == SECRET_BYTES
    return f"sk_{env}_{key_id[3:]}_{secret.hex()}"


def secret_digest(secret: str) -> str:
    """The stored form of a secret. A key's secret is 256 random bits, so a plain sha256 is as
    strong as a slow password hash here and keeps the check off the request's critical path."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(key: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(key.secret_sha256, secret_digest(secret))


def check(key: ApiKey | None, parsed: ParsedKey) -> Principal | None:
    """The principal a presented key stands for, or None: unknown, revoked, of another
    environment, or the wrong secret (one answer for all, so probing learns nothing)."""
    if key is None or key.revoked_at is not None or key.env != parsed.env:
        return None
    if not secret_matches(key, parsed.secret):
        return None
    return active(key)


def active(key: ApiKey | None) -> Principal | None:
    """The principal of a stored key that is still in force (a console session holds a key id
    whose secret was checked when the session began), else None."""
    if key is None or key.revoked_at is not None:
        return None
    return Principal(key_id=key.key_id, client_id=key.client_id, role=key.role, user=key.user)


def grant_refusal(grantor: Principal, client_id: str | None, role: Role) -> str | None:
    """Why `grantor` may not create a key of `role` for `client_id` (None: it may). Over the API
    only client keys are made, a client admin's for its own client only; staff keys come from
    the command line on the machine itself, so no key can mint a key stronger than itself."""
    if role in STAFF_ROLES:
        return f"{role.value} is a staff role: staff keys are created with `stablerail keys create`"
    if client_id is None:
        return "client_id is required"
    if not grantor.sees(client_id):
        return f"a {grantor.role.value} key creates keys for its own client only"
    return None


def key_refusal(client_id: str | None, role: Role, user: str) -> str | None:
    """Why a key with these fields cannot exist (None: it can)."""
    staff = role in STAFF_ROLES
    if (client_id is None) != staff:
        kind = "staff" if staff else "client"
        needs = " it takes no client" if client_id is not None else " a client is required"
        return f"role {role.value} is a {kind} role:{needs}"
    if client_id is not None and (not is_name(client_id) or len(client_id) > client_id_length_max):
        return f"client {client_id!r}: letters, digits, '_', '.', '-' (1 to 64)"
    if not is_user(user):
        return f"user {user!r} is not a usable user name"
    return None
