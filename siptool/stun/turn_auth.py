"""TURN credentials: long-term (RFC 8489 §9.2) and the TURN REST API scheme, sans I/O.

A TURN server answers the first Allocate with 401 Unauthenticated, REALM and NONCE (RFC 8656
§7.2, RFC 8489 §9.2.4); the client repeats the request with USERNAME, REALM, NONCE and
MESSAGE-INTEGRITY keyed with MD5(username:realm:password) (§9.2.2), and every later request
carries the same.  ``TurnAuth`` holds that state: ``encode`` signs a request, ``challenge``
reads an error response and says whether to send again (the state updated) or why not.

The TURN REST API scheme (draft-uberti-behave-turn-rest, coturn's ``use-auth-secret``): the
username is ``EXPIRY:USER`` (EXPIRY a Unix time), the password base64(HMAC-SHA1(secret,
username)); the server recomputes it from the shared secret.  ``rest_credentials`` builds
them; the caller supplies the time (the engine has no clock).

Decisions:

* MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6) with PASSWORD-ALGORITHM SHA-256 is used when the
  401 lists SHA-256 in PASSWORD-ALGORITHMS (§9.2.4); the request then echoes
  PASSWORD-ALGORITHMS as received (§9.2.3.2).  The nonce cookie's "password algorithms" bit
  (§9.2) is not required: the example of RFC 8489 Appendix B.1 does not set it either, and
  refusing a downgrade is the server's check.  Otherwise MD5 and MESSAGE-INTEGRITY.
* A 401 after the credentials were sent is "wrong credentials" (``wrong_credentials``), as is
  441 Wrong Credentials (RFC 8656 §7.2); a 401 without credentials to send is
  ``auth_required``.
* 438 Stale Nonce is answered once per request with the new NONCE (RFC 8489 §9.2.5): a second
  438 in a row is a failure, so a server that keeps changing its nonce cannot loop the client.
* ``rounds`` counts the challenges answered (401 and 438): 0 for a server that asks for no
  credentials, 1 for the usual long-term exchange.
* Every request carries SOFTWARE when given (RFC 8489 §14.14; not the Send indications,
  which stay small) and every message FINGERPRINT (§14.7), which TURN servers accept.
* The password is kept out of ``repr`` and never put in a message other than through the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from siptool.stun.message import (
    NONCE,
    PASSWORD_ALGORITHM,
    PASSWORD_ALGORITHMS,
    REALM,
    SOFTWARE,
    USERNAME,
    StunClass,
    StunMessage,
    encode_message,
    long_term_key,
    verify_message_integrity,
    verify_message_integrity_sha256,
)

__all__ = [
    "LONG_TERM",
    "REST_SECRET",
    "REST_USER",
    "AuthFailure",
    "TurnAuth",
    "TurnCredentials",
    "credentials_for",
    "rest_credentials",
]

LONG_TERM = "long-term"
REST_SECRET = "rest-secret"

SHA256_ALGORITHM = 0x0002  # RFC 8489 §18.5 (PASSWORD_ALGORITHM_NAMES in stun.message)


@dataclass(frozen=True)
class TurnCredentials:
    """A username and password, and the scheme they came from (``LONG_TERM``/``REST_SECRET``)."""

    username: str
    password: str = field(repr=False)
    mode: str = LONG_TERM


def rest_credentials(secret: str, user: str, expiry: int) -> TurnCredentials:
    """The TURN REST API credentials valid until the Unix time ``expiry`` (see the module
    docs): username ``EXPIRY:USER``, password base64(HMAC-SHA1(secret, username))."""
    username = f"{expiry}:{user}"
    mac = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return TurnCredentials(username, base64.b64encode(mac).decode("ascii"), REST_SECRET)


REST_USER = "siptool"  # the USER of a REST username when none is given


def credentials_for(
    user: str | None, password: str | None, secret: str | None, rest_ttl: int, now: float
) -> TurnCredentials | None:
    """The credentials the flags give at Unix time ``now``: REST ones from ``secret`` (valid
    ``rest_ttl`` seconds, USER ``user`` or ``REST_USER``), else long-term ``user``/``password``,
    else none (the server's 401 is then "credentials needed")."""
    if secret is not None:
        return rest_credentials(secret, user or REST_USER, int(now) + rest_ttl)
    if user is not None and password is not None:
        return TurnCredentials(user, password)
    return None


@dataclass(frozen=True)
class AuthFailure:
    """Why a challenge cannot be answered: the JSON error code and what to do."""

    code: str
    message: str


class TurnAuth:
    """The credential state of one TURN client (see the module docs)."""

    def __init__(self, credentials: TurnCredentials | None, software: str | None = None) -> None:
        self.credentials = credentials
        self.software = software
        self.realm: str | None = None
        self.nonce: str | None = None
        self.algorithm = "md5"
        self.rounds = 0
        self._algorithms_raw: bytes | None = None
        self._key: bytes | None = None
        self._stale_answered = False

    @property
    def mode(self) -> str | None:
        """The scheme in use once the server asked for credentials; None before (or never)."""
        if self.credentials is None or self.nonce is None:
            return None
        return self.credentials.mode

    @property
    def key(self) -> bytes | None:
        """The long-term key once a challenge gave the realm; None before."""
        return self._key

    def encode(
        self, msg_class: StunClass, method: int, tid: bytes, attributes: list[tuple[int, bytes]]
    ) -> bytes:
        """Wire bytes of a request (signed once a challenge was answered) or an indication
        (never signed: RFC 8656 §11.1)."""
        attributes = list(attributes)
        key = None
        if msg_class is StunClass.REQUEST:
            if self.software:
                attributes.append((SOFTWARE, self.software.encode("utf-8")))
            if self._key is not None:
                attributes += self._credential_attributes()
                key = self._key
        return encode_message(
            msg_class,
            method,
            tid,
            attributes,
            integrity_key=key,
            integrity_sha256=key is not None and self.algorithm == "sha256",
            fingerprint=True,
        )

    def _credential_attributes(self) -> list[tuple[int, bytes]]:
        assert self.credentials is not None and self.realm is not None and self.nonce is not None
        out = [
            (USERNAME, self.credentials.username.encode("utf-8")),
            (REALM, self.realm.encode("utf-8")),
            (NONCE, self.nonce.encode("utf-8")),
        ]
        if self.algorithm == "sha256" and self._algorithms_raw is not None:
            out.append((PASSWORD_ALGORITHMS, self._algorithms_raw))
            out.append((PASSWORD_ALGORITHM, SHA256_ALGORITHM.to_bytes(2, "big") + b"\0\0"))
        return out

    def answered(self) -> None:
        """A request got a response other than 438: the next 438 may be answered again."""
        self._stale_answered = False

    def challenge(self, message: StunMessage) -> AuthFailure | bool:
        """An error response: True to send the request again (state updated), an
        ``AuthFailure`` when the credentials cannot get past it, False when it is no
        authentication matter (another error code)."""
        code = message.error_code[0] if message.error_code else None
        if code == 401:
            return self._unauthenticated(message)
        if code == 438:
            return self._stale(message)
        if code == 441:
            return self._wrong(message)
        return False

    def _unauthenticated(self, message: StunMessage) -> AuthFailure | bool:
        realm = _text(message, REALM)
        if self.credentials is None:
            where = f" (realm {realm!r})" if realm else ""
            return AuthFailure(
                "auth_required",
                f"the server asks for credentials{where}: 401 {_reason(message)}; give --user "
                "with --password-file or SIPTOOL_PASSWORD, or --secret-file",
            )
        if self._key is not None:
            return self._wrong(message)
        nonce = _text(message, NONCE)
        if realm is None or nonce is None:
            return AuthFailure(
                "auth_required",
                "the server's 401 has no REALM or NONCE: it does not use long-term credentials "
                "(RFC 8489 §9.2)",
            )
        self.realm, self.nonce = realm, nonce
        self._choose_algorithm(message)
        self._key = long_term_key(
            self.credentials.username, realm, self.credentials.password, algorithm=self.algorithm
        )
        self.rounds += 1
        return True

    def _choose_algorithm(self, message: StunMessage) -> None:
        offered = message.attribute(PASSWORD_ALGORITHMS)
        names = offered.value if offered is not None and isinstance(offered.value, list) else []
        if any(isinstance(a, dict) and a.get("algorithm") == SHA256_ALGORITHM for a in names):
            self.algorithm = "sha256"
            self._algorithms_raw = offered.raw if offered is not None else None
        else:
            self.algorithm, self._algorithms_raw = "md5", None

    def _stale(self, message: StunMessage) -> AuthFailure | bool:
        nonce = _text(message, NONCE)
        if self._key is None or nonce is None or self._stale_answered:
            return AuthFailure(
                "stale_nonce",
                f"438 {_reason(message)} again after a fresh NONCE: the server keeps "
                "refusing its own nonces (check its clock and nonce lifetime)",
            )
        self.nonce = nonce
        self.realm = _text(message, REALM) or self.realm
        self._stale_answered = True
        self.rounds += 1
        return True

    def _wrong(self, message: StunMessage) -> AuthFailure:
        user = self.credentials.username if self.credentials else "-"
        code = message.error_code[0] if message.error_code else 401
        return AuthFailure(
            "wrong_credentials",
            f"wrong credentials: the server refused user {user!r} in realm {self.realm!r} "
            f"({code} {_reason(message)} after the credentials were sent); check --user and "
            "the password (or --secret-file against the server's static-auth-secret)",
        )

    def verify(self, data: bytes) -> bool | None:
        """The response's MESSAGE-INTEGRITY(-SHA256) checked with our key (RFC 8489 §9.2.5);
        None when there is no key or the response carries none."""
        if self._key is None:
            return None
        if self.algorithm == "sha256":
            found = verify_message_integrity_sha256(data, self._key)
            if found is not None:
                return found
        return verify_message_integrity(data, self._key)


def _text(message: StunMessage, attr_type: int) -> str | None:
    attribute = message.attribute(attr_type)
    return attribute.value if attribute is not None and isinstance(attribute.value, str) else None


def _reason(message: StunMessage) -> str:
    return message.error_code[1] if message.error_code else "(no ERROR-CODE)"
