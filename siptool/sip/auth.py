"""Digest authentication for SIP clients, pure (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760).

Three layers, each usable alone:

* ``parse_challenge`` / ``choose_challenge``: a WWW-Authenticate or Proxy-Authenticate value
  becomes a ``DigestChallenge``; among several, the strongest algorithm we can compute wins.
* ``DigestSession``: one challenge plus credentials; ``authorization()`` computes the
  Authorization / Proxy-Authorization value and counts nonce use (``nc``).
* ``AuthState``: the client's decision after a 401/407 ("retry", "wrong_credentials",
  "unsupported") with the loop guard, and ``apply()`` to put credentials on the next request.

Decisions (choices the RFCs leave open, or tolerance of real input):

* The auth-param list is parsed leniently: LWS around ``=`` and ``,``, empty list elements
  (``a=1,,b=2``) and unquoted values that are not RFC tokens (base64 nonces with ``/`` and
  ``=``, seen in the wild) are accepted; an unterminated quoted-string, a parameter without
  ``=``, or a missing nonce/realm is a ``ParseError``.  A repeated parameter keeps its first
  value.
* Parameter names are case-insensitive (RFC 7616 §3.3) and stored lower-cased; the algorithm
  token is matched case-insensitively and stored in its registered spelling ("MD5-sess").
* ``choose_challenge`` prefers the strongest hash, then the header the server listed first.
  RFC 8760 §2.4 has the UAC take the topmost supported header "unless a local policy dictates
  otherwise"; preferring strength is that local policy (``strongest=False`` gives the RFC's
  default).
* qop: ``auth`` whenever offered; ``auth-int`` only when it is the sole qop offered, because it
  ties the response to a body the UAS may see changed by proxies.  Unknown qop values are
  ignored (RFC 2617 §3.2.1); a challenge with no known qop gets the RFC 2069 response.
* A -sess algorithm without qop still uses a cnonce for A1 (RFC 2617 §3.2.2.2 defines A1 that
  way regardless of qop) and sends it, since the server cannot compute A1 without it.
* Strings are hashed as UTF-8 (RFC 7616 §4: "UTF-8 is the only allowed charset").
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from siptool.errors import ParseError, SiptoolError
from siptool.sip.nameaddr import read_quoted

if TYPE_CHECKING:
    from siptool.sip.message import SipMessage

__all__ = [
    "AuthReport",
    "AuthState",
    "ChallengeOutcome",
    "DigestChallenge",
    "DigestCredentials",
    "DigestSession",
    "UnsupportedAlgorithm",
    "choose_challenge",
    "parse_challenge",
    "supported_algorithms",
]

ChallengeOutcome = Literal["retry", "wrong_credentials", "unsupported"]


class UnsupportedAlgorithm(SiptoolError):
    """A digest algorithm (or scheme) siptool cannot compute."""

    code = "unsupported_algorithm"


# Registered spelling (RFC 7616 §6.1 / RFC 8760 §2.2) -> (hashlib name, strength rank).  The
# -sess variants share their hash's rank: the session form changes what A1 covers, not the
# strength of the hash, so between them the server's order decides.
_ALGORITHMS: dict[str, tuple[str, int]] = {
    "MD5": ("md5", 1),
    "MD5-sess": ("md5", 1),
    "SHA-256": ("sha256", 2),
    "SHA-256-sess": ("sha256", 2),
    "SHA-512-256": ("sha512_256", 3),
    "SHA-512-256-sess": ("sha512_256", 3),
}
_BY_UPPER = {name.upper(): name for name in _ALGORITHMS}


def _hasher(algorithm: str) -> Callable[[bytes], str]:
    """The hex-digest function of ``algorithm`` (a registered spelling), or UnsupportedAlgorithm."""
    entry = _ALGORITHMS.get(algorithm)
    if entry is None:
        known = ", ".join(_ALGORITHMS)
        raise UnsupportedAlgorithm(
            f"digest algorithm {algorithm!r} is not supported (supported: {known})"
        )
    name = entry[0]
    try:
        hashlib.new(name)
    except ValueError:
        # SHA-512/256 is not SHA-512 truncated (different initial values, FIPS 180-4 §5.3.6),
        # and hashlib only has it when the linked OpenSSL does.
        raise UnsupportedAlgorithm(
            f"digest algorithm {algorithm} needs the {name} hash, which this Python's "
            "OpenSSL does not provide"
        ) from None

    def digest(data: bytes) -> str:
        return hashlib.new(name, data).hexdigest()

    return digest


def supported_algorithms() -> tuple[str, ...]:
    """The registered algorithms this Python can compute, weakest first."""
    out = []
    for name in _ALGORITHMS:
        try:
            _hasher(name)
        except UnsupportedAlgorithm:
            continue
        out.append(name)
    return tuple(out)


# -- challenges -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """One Digest challenge (RFC 3261 §25.1 ``digest-cln``, RFC 7616 §3.3)."""

    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str = "MD5"  # RFC 7616 §3.3: absent means MD5
    qop_options: tuple[str, ...] = ()
    stale: bool = False
    userhash: bool = False
    domain: str | None = None
    # Every parameter as received (names lower-cased, quotes removed, escapes resolved).
    params: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def supported(self) -> bool:
        """True when siptool can compute a response for this challenge's algorithm."""
        try:
            _hasher(self.algorithm)
        except UnsupportedAlgorithm:
            return False
        return True


# RFC 3261 §25.1 token characters.
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
_LWS = " \t\r\n"
# Characters that end an unquoted value (lenient: anything else is kept, see module docstring).
_VALUE_END = frozenset(' \t\r\n,"')


def _skip_lws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in _LWS:
        pos += 1
    return pos


def _read_token(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in _TOKEN_CHARS:
        pos += 1
    return pos


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """(content with quoted-pairs resolved, index after the closing quote); ``text[pos]=='"'``."""
    try:
        return read_quoted(text, pos)
    except ParseError as exc:
        raise ParseError(f"{exc.message} in challenge", offset=exc.offset) from None


def _parse_params(text: str, pos: int) -> tuple[dict[str, str], int]:
    """The ``auth-param *(COMMA auth-param)`` list from ``text[pos:]``.

    Returns the parameters and where parsing stopped: the end of ``text``, or the start of a
    following challenge (``, Scheme param=...`` as allowed by RFC 7235 §4.1) which is left for
    the caller.
    """
    params: dict[str, str] = {}
    n = len(text)
    while True:
        pos = _skip_lws(text, pos)
        while pos < n and text[pos] == ",":  # tolerate empty list elements
            pos = _skip_lws(text, pos + 1)
        if pos >= n:
            return params, pos
        name_end = _read_token(text, pos)
        if name_end == pos:
            raise ParseError(f"expected a parameter name at {text[pos : pos + 20]!r}", offset=pos)
        after = _skip_lws(text, name_end)
        if after >= n or text[after] != "=":
            if params and (after == n or (after > name_end and text[after] in _TOKEN_CHARS)):
                # "Scheme token=..." (or a bare "Scheme") after a comma: the next challenge
                # starts here.
                return params, pos
            raise ParseError(
                f"parameter {text[pos:name_end][:40]!r} has no '=' value", offset=name_end
            )
        name = text[pos:name_end].lower()
        pos = _skip_lws(text, after + 1)
        if pos < n and text[pos] == '"':
            value, pos = _read_quoted(text, pos)
        else:
            start = pos
            while pos < n and text[pos] not in _VALUE_END:
                pos += 1
            if pos == start:
                raise ParseError(f"parameter {name[:40]!r} has an empty value", offset=pos)
            value = text[start:pos]
        params.setdefault(name, value)
        pos = _skip_lws(text, pos)
        if pos < n and text[pos] != ",":
            raise ParseError(
                f"expected ',' after parameter {name[:40]!r}, found {text[pos : pos + 20]!r}",
                offset=pos,
            )


def _split_challenges(value: str) -> list[tuple[str, dict[str, str]]]:
    """Every (scheme, params) in one header value (RFC 7235 §4.1 allows a list)."""
    out: list[tuple[str, dict[str, str]]] = []
    n = len(value)
    pos = _skip_lws(value, 0)
    while True:
        while pos < n and value[pos] == ",":
            pos = _skip_lws(value, pos + 1)
        if pos >= n:
            break
        end = _read_token(value, pos)
        if end == pos:
            raise ParseError(f"expected an auth scheme at {value[pos : pos + 20]!r}", offset=pos)
        scheme = value[pos:end]
        if end < n and value[end] not in _LWS and value[end] != ",":
            raise ParseError(f"bad auth scheme {value[pos : pos + 40]!r}", offset=pos)
        params, pos = _parse_params(value, end)
        out.append((scheme, params))
    if not out:
        raise ParseError("empty challenge", offset=0)
    return out


def _challenge_from_params(params: dict[str, str]) -> DigestChallenge:
    # RFC 7616 §3.3 / RFC 3261 §25.1: realm and nonce are required; without the nonce no
    # response can be computed.
    for required in ("realm", "nonce"):
        if required not in params:
            raise ParseError(f"Digest challenge without {required}")
    algorithm = params.get("algorithm", "MD5")
    algorithm = _BY_UPPER.get(algorithm.upper(), algorithm)
    qop_text = params.get("qop")
    qops: tuple[str, ...] = ()
    if qop_text is not None:
        # RFC 2617 §3.2.1: qop-options = "qop" "=" <"> 1#qop-value <">
        qops = tuple(q.strip(_LWS).lower() for q in qop_text.split(",") if q.strip(_LWS))
    return DigestChallenge(
        realm=params["realm"],
        nonce=params["nonce"],
        opaque=params.get("opaque"),
        algorithm=algorithm,
        qop_options=qops,
        stale=params.get("stale", "").lower() == "true",
        userhash=params.get("userhash", "").lower() == "true",
        domain=params.get("domain"),
        params=params,
    )


def parse_challenge(value: str) -> DigestChallenge:
    """Parse one WWW-Authenticate / Proxy-Authenticate value holding a Digest challenge.

    A value with several challenges gives the first Digest one.  Raises ``ParseError`` (and
    nothing else) for malformed input or a value with no Digest challenge.
    """
    challenges = _split_challenges(value)
    for scheme, params in challenges:
        if scheme.lower() == "digest":  # RFC 7235 §2.1: scheme names are case-insensitive
            return _challenge_from_params(params)
    schemes = ", ".join(scheme for scheme, _ in challenges)
    raise ParseError(f"not a Digest challenge (scheme {schemes[:40]!r})")


def choose_challenge(values: list[str], *, strongest: bool = True) -> DigestChallenge:
    """Pick the challenge to answer among several header values (RFC 8760 §2.4, RFC 7616 §3.7).

    With ``strongest`` (the default) the strongest supported hash wins (SHA-512-256 > SHA-256 >
    MD5, -sess variants ranked with their hash), ties going to the topmost; otherwise the
    topmost supported one wins.  Values that are not Digest, or malformed, are skipped.
    Raises ``ParseError`` when no value holds a usable Digest challenge and
    ``UnsupportedAlgorithm`` when every Digest challenge uses an algorithm we cannot compute.
    """
    candidates: list[DigestChallenge] = []
    errors: list[str] = []
    for value in values:
        try:
            challenges = _split_challenges(value)
        except ParseError as exc:
            errors.append(exc.message)
            continue
        for scheme, params in challenges:
            if scheme.lower() != "digest":
                errors.append(f"scheme {scheme[:40]!r} is not Digest")
                continue
            try:
                candidates.append(_challenge_from_params(params))
            except ParseError as exc:
                errors.append(exc.message)
    if not candidates:
        detail = "; ".join(errors[:3]) if errors else "no challenge header"
        raise ParseError(f"no usable Digest challenge ({detail})")
    usable = [c for c in candidates if c.supported]
    if not usable:
        offered = ", ".join(sorted({c.algorithm for c in candidates}))
        raise UnsupportedAlgorithm(f"no supported digest algorithm offered (offered: {offered})")
    if not strongest:
        return usable[0]
    # max() keeps the first of equal keys: ties go to the server's order.
    return max(usable, key=lambda c: _ALGORITHMS[c.algorithm][1])


# -- responses --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    username: str
    password: str = field(repr=False)  # never printed (CLI contract: passwords stay secret)


def _quote(text: str) -> str:
    """A quoted-string, escaping ``"`` and ``\\`` (RFC 3261 §25.1 quoted-pair)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DigestSession:
    """Answers one challenge, counting the requests sent with its nonce.

    RFC 7616 §3.4: ``nc`` is the hexadecimal count of requests (including this one) the client
    has sent with this nonce; the server uses it to detect replays, so it must grow by one per
    request and restart at 1 with a new nonce (``update``).
    """

    def __init__(
        self,
        challenge: DigestChallenge,
        credentials: DigestCredentials,
        *,
        cnonce_factory: Callable[[], str] | None = None,
    ) -> None:
        _hasher(challenge.algorithm)  # fail now, not on the first request
        self.challenge = challenge
        self.credentials = credentials
        self.nc = 0  # requests sent with challenge.nonce so far
        self._cnonce_factory = cnonce_factory or (lambda: secrets.token_hex(16))

    @property
    def qop(self) -> str | None:
        """The qop this session answers with, or None for an RFC 2069 response."""
        offered = self.challenge.qop_options
        if "auth" in offered:
            return "auth"
        if "auth-int" in offered:
            return "auth-int"
        return None

    def update(self, challenge: DigestChallenge) -> None:
        """Answer ``challenge`` from now on; a new nonce restarts ``nc``."""
        _hasher(challenge.algorithm)
        if challenge.nonce != self.challenge.nonce:
            self.nc = 0
        self.challenge = challenge

    def authorization(
        self, method: str, uri: str, body: bytes = b"", cnonce: str | None = None
    ) -> str:
        """The Authorization / Proxy-Authorization value for one request (counts as a use).

        ``uri`` is the Request-URI exactly as sent (RFC 3261 §22.4: digest-uri must equal it).
        """
        ch = self.challenge
        h = _hasher(ch.algorithm)

        def hs(text: str) -> str:
            return h(text.encode("utf-8", "surrogateescape"))

        qop = self.qop
        sess = ch.algorithm.endswith("-sess")
        if cnonce is None and (qop is not None or sess):
            cnonce = self._cnonce_factory()
        self.nc += 1
        nc = f"{self.nc:08x}"
        user, realm, password = self.credentials.username, ch.realm, self.credentials.password

        # RFC 7616 §3.4.2 (RFC 2617 §3.2.2.2): A1 = user:realm:password, and for -sess
        # H(A1) = H(H(user:realm:password):nonce:cnonce).
        ha1 = hs(f"{user}:{realm}:{password}")
        if sess:
            ha1 = hs(f"{ha1}:{ch.nonce}:{cnonce}")
        # RFC 7616 §3.4.3: A2 = Method:digest-uri, plus :H(entity-body) for auth-int.
        a2 = f"{method}:{uri}"
        if qop == "auth-int":
            a2 += f":{h(body)}"
        ha2 = hs(a2)
        if qop is None:
            # RFC 2069 compatibility (RFC 2617 §3.2.2.1): no nc, no cnonce in the digest.
            response = hs(f"{ha1}:{ch.nonce}:{ha2}")
        else:
            response = hs(f"{ha1}:{ch.nonce}:{nc}:{cnonce}:{qop}:{ha2}")

        # RFC 7616 §3.4.4: with userhash the username sent is H(user:realm).
        shown_user = hs(f"{user}:{realm}") if ch.userhash else user
        parts = [
            f"username={_quote(shown_user)}",
            f"realm={_quote(realm)}",
            f"nonce={_quote(ch.nonce)}",
            f"uri={_quote(uri)}",
            f"response={_quote(response)}",
            f"algorithm={ch.algorithm}",
        ]
        if cnonce is not None:
            parts.append(f"cnonce={_quote(cnonce)}")
        if ch.opaque is not None:
            # RFC 7616 §3.3: opaque is returned unchanged.
            parts.append(f"opaque={_quote(ch.opaque)}")
        if qop is not None:
            # RFC 3261 §25.1 / RFC 7616 §3.4: qop and nc are unquoted in the response.
            parts.append(f"qop={qop}")
            parts.append(f"nc={nc}")
        if ch.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts)


# -- the client flow --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthReport:
    """What a command reports under the contract's ``auth`` key."""

    scheme: str | None  # "Digest" once challenged, else None
    algorithm: str | None
    qop: str | None
    rounds: int  # challenges answered with credentials ("retry" outcomes)

    def to_dict(self) -> dict[str, str | int | None]:
        return {
            "scheme": self.scheme,
            "algorithm": self.algorithm,
            "qop": self.qop,
            "rounds": self.rounds,
        }


# RFC 3261 §22.2 / §22.3: which header carries the challenge for each status, and which header
# answers it.
_CHALLENGE_HEADERS = {
    401: ("WWW-Authenticate", "Authorization"),
    407: ("Proxy-Authenticate", "Proxy-Authorization"),
}

# RFC 3261 §22.3 allows one credential per proxy realm on the path; more than this many is a
# server misbehaving, not a real path.
_MAX_REALMS = 4


class AuthState:
    """The client side of RFC 3261 §22.2/§22.3 for one request flow (a REGISTER, an INVITE).

    Feed it every 401/407 with ``on_challenge``; on "retry", build the next request (new CSeq
    and branch, RFC 3261 §22.2), call ``apply`` and send it.  Credentials are kept per (header,
    realm): a 407 from a proxy then a 401 from the registrar both get answered.

    The loop guard: a challenge for a realm whose credentials were on the last request means
    they were rejected.  That earns one retry when the server marks the nonce stale (RFC 7616
    §3.3: the credentials were right, only the nonce expired); otherwise, or a second time,
    "wrong_credentials".  Call ``restart`` before a new flow (a refresh) that reuses the cached
    nonces.
    """

    def __init__(
        self,
        credentials: DigestCredentials,
        *,
        cnonce_factory: Callable[[], str] | None = None,
        strongest: bool = True,
    ) -> None:
        self.credentials = credentials
        self._cnonce_factory = cnonce_factory
        self._strongest = strongest
        # (answer header, realm) -> session, in the order the challenges came.
        self._sessions: dict[tuple[str, str], DigestSession] = {}
        self._on_last_request: set[tuple[str, str]] = set()
        self._stale_retried: set[tuple[str, str]] = set()
        self._last: DigestSession | None = None
        self.rounds = 0
        self.last_outcome: ChallengeOutcome | None = None
        self.error: str | None = None  # why the last outcome was "unsupported"

    def on_challenge(self, response: SipMessage) -> ChallengeOutcome:
        """Decide what to do with a 401 or 407 response (see the class docstring)."""
        headers = _CHALLENGE_HEADERS.get(response.status or 0)
        if headers is None:
            raise ValueError(f"on_challenge needs a 401 or 407 response, not {response.status}")
        challenge_header, answer_header = headers
        try:
            challenge = choose_challenge(
                response.header_values(challenge_header), strongest=self._strongest
            )
        except (ParseError, UnsupportedAlgorithm) as exc:
            self.error = f"{response.status} {challenge_header}: {exc.message}"
            return self._outcome("unsupported")
        key = (answer_header, challenge.realm)
        session = self._sessions.get(key)
        if session is None and len(self._sessions) >= _MAX_REALMS:
            # A server inventing a new realm on every challenge would otherwise loop us.
            self.error = f"more than {_MAX_REALMS} realms challenged; giving up"
            return self._outcome("unsupported")
        if key in self._on_last_request:
            if not challenge.stale or key in self._stale_retried:
                self.error = None
                return self._outcome("wrong_credentials")
            self._stale_retried.add(key)
        if session is None:
            session = DigestSession(
                challenge, self.credentials, cnonce_factory=self._cnonce_factory
            )
            self._sessions[key] = session
        else:
            session.update(challenge)
        self._last = session
        self._on_last_request.clear()
        self.rounds += 1
        self.error = None
        return self._outcome("retry")

    def _outcome(self, outcome: ChallengeOutcome) -> ChallengeOutcome:
        self.last_outcome = outcome
        return outcome

    def apply(self, request: SipMessage) -> None:
        """Put credentials for every known realm on ``request`` (replacing any already there).

        RFC 3261 §22.3: one Authorization / Proxy-Authorization header per realm.
        """
        if request.method is None or request.request_uri is None:
            raise ValueError("apply() needs a request")
        for answer_header in {key[0] for key in self._sessions}:
            request.remove_header(answer_header)
        self._on_last_request = set(self._sessions)
        for (answer_header, _realm), session in self._sessions.items():
            value = session.authorization(request.method, request.request_uri, request.body)
            request.add_header(answer_header, value)

    def restart(self) -> None:
        """Start a new request flow: keep nonces (and nc) but reset the loop guard."""
        self._on_last_request.clear()
        self._stale_retried.clear()

    def report(self) -> AuthReport:
        session = self._last
        if session is None:
            return AuthReport(scheme=None, algorithm=None, qop=None, rounds=self.rounds)
        return AuthReport(
            scheme="Digest",
            algorithm=session.challenge.algorithm,
            qop=session.qop,
            rounds=self.rounds,
        )
