"""stun/turn_auth.py: long-term credentials against the RFC 5769 §2.4 and RFC 8489 B.1
vectors, the 401/438/441 rounds, and the TURN REST password against a value computed with
openssl (``printf '%s' 1700000000:siptool | openssl dgst -sha1 -hmac s3cr3t -binary |
base64``)."""

from __future__ import annotations

from siptool.stun.message import (
    ALLOCATE,
    ERROR_CODE,
    MESSAGE_INTEGRITY,
    MESSAGE_INTEGRITY_SHA256,
    NONCE,
    PASSWORD_ALGORITHM,
    PASSWORD_ALGORITHMS,
    REALM,
    SOFTWARE,
    StunClass,
    StunMessage,
    encode_message,
    new_transaction_id,
    parse_stun,
    verify_message_integrity,
    verify_message_integrity_sha256,
)
from siptool.stun.turn_auth import (
    LONG_TERM,
    REST_SECRET,
    AuthFailure,
    TurnAuth,
    TurnCredentials,
    rest_credentials,
)
from tests.unit.test_stun_message import (
    MATRIX_USER,
    RFC5769_LONG_TERM_REQUEST,
    RFC8489_SHA256_REQUEST,
)

RFC5769_NONCE = "f//499k954d6OL34oL9FSTvy64sA"
RFC8489_NONCE = "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA"
MATRIX = TurnCredentials(MATRIX_USER, "TheMatrIX")  # the password after SASLprep


def error(code: int, reason: str, *extra: tuple[int, bytes]) -> StunMessage:
    """An Allocate error response with ERROR-CODE ``code`` and ``extra`` attributes."""
    value = bytes((0, 0, code // 100, code % 100)) + reason.encode()
    wire = encode_message(
        StunClass.ERROR_RESPONSE, ALLOCATE, new_transaction_id(), [(ERROR_CODE, value), *extra]
    )
    return parse_stun(wire)


def challenge_401(nonce: str = RFC5769_NONCE, *extra: tuple[int, bytes]) -> StunMessage:
    return error(401, "Unauthorized", (REALM, b"example.org"), (NONCE, nonce.encode()), *extra)


def test_long_term_key_verifies_the_rfc5769_example() -> None:
    auth = TurnAuth(MATRIX)
    assert auth.challenge(challenge_401()) is True
    assert auth.key is not None and auth.algorithm == "md5"
    assert verify_message_integrity(RFC5769_LONG_TERM_REQUEST, auth.key) is True
    assert auth.mode == LONG_TERM and auth.rounds == 1 and auth.realm == "example.org"


def test_signed_request_carries_the_credentials_and_verifies() -> None:
    auth = TurnAuth(TurnCredentials("alice", "pw"), "siptool/test")
    unsigned = parse_stun(auth.encode(StunClass.REQUEST, ALLOCATE, new_transaction_id(), []))
    assert unsigned.attribute(MESSAGE_INTEGRITY) is None
    assert unsigned.software == "siptool/test" and unsigned.fingerprint_ok is True
    auth.challenge(challenge_401("n1"))
    wire = auth.encode(StunClass.REQUEST, ALLOCATE, new_transaction_id(), [])
    message = parse_stun(wire)
    names = [a.name for a in message.attributes]
    assert names[-5:] == ["USERNAME", "REALM", "NONCE", "MESSAGE-INTEGRITY", "FINGERPRINT"]
    assert verify_message_integrity(wire, auth.key or b"") is True
    assert b"pw" not in wire


def test_indications_are_never_signed_nor_carry_software() -> None:
    auth = TurnAuth(TurnCredentials("alice", "pw"), "siptool/test")
    auth.challenge(challenge_401("n1"))
    message = parse_stun(auth.encode(StunClass.INDICATION, 0x006, new_transaction_id(), []))
    assert message.attribute(MESSAGE_INTEGRITY) is None
    assert message.attribute(SOFTWARE) is None


def test_sha256_when_password_algorithms_offers_it_rfc8489_b1() -> None:
    algorithms = bytes.fromhex("0002 0000 0001 0000")  # SHA-256, MD5
    auth = TurnAuth(MATRIX)
    assert auth.challenge(challenge_401(RFC8489_NONCE, (PASSWORD_ALGORITHMS, algorithms))) is True
    assert auth.algorithm == "sha256" and auth.key is not None
    assert verify_message_integrity_sha256(RFC8489_SHA256_REQUEST, auth.key) is True
    wire = auth.encode(StunClass.REQUEST, ALLOCATE, new_transaction_id(), [])
    message = parse_stun(wire)
    assert message.attribute(PASSWORD_ALGORITHMS) is not None
    chosen = message.attribute(PASSWORD_ALGORITHM)
    assert chosen is not None and isinstance(chosen.value, dict)
    assert chosen.value["name"] == "SHA-256"
    assert message.attribute(MESSAGE_INTEGRITY_SHA256) is not None
    assert message.attribute(MESSAGE_INTEGRITY) is None
    assert verify_message_integrity_sha256(wire, auth.key) is True
    assert auth.verify(wire) is True


def test_md5_when_only_md5_is_offered() -> None:
    auth = TurnAuth(MATRIX)
    md5_only = bytes.fromhex("0001 0000")
    auth.challenge(challenge_401(RFC8489_NONCE, (PASSWORD_ALGORITHMS, md5_only)))
    assert auth.algorithm == "md5"


def test_401_without_credentials_is_auth_required() -> None:
    outcome = TurnAuth(None).challenge(challenge_401())
    assert isinstance(outcome, AuthFailure) and outcome.code == "auth_required"
    assert "--user" in outcome.message and "example.org" in outcome.message


def test_second_401_is_wrong_credentials_and_names_no_password() -> None:
    auth = TurnAuth(TurnCredentials("alice", "hunter2"))
    assert auth.challenge(challenge_401("n1")) is True
    outcome = auth.challenge(challenge_401("n2"))
    assert isinstance(outcome, AuthFailure) and outcome.code == "wrong_credentials"
    assert "alice" in outcome.message and "hunter2" not in outcome.message
    assert "hunter2" not in repr(auth.credentials)


def test_441_is_wrong_credentials() -> None:
    auth = TurnAuth(TurnCredentials("alice", "pw"))
    auth.challenge(challenge_401("n1"))
    outcome = auth.challenge(error(441, "Wrong Credentials"))
    assert isinstance(outcome, AuthFailure) and outcome.code == "wrong_credentials"


def test_stale_nonce_is_answered_once_per_request() -> None:
    auth = TurnAuth(TurnCredentials("alice", "pw"))
    auth.challenge(challenge_401("n1"))
    assert auth.challenge(error(438, "Stale Nonce", (NONCE, b"n2"))) is True
    assert auth.nonce == "n2" and auth.rounds == 2
    again = auth.challenge(error(438, "Stale Nonce", (NONCE, b"n3")))
    assert isinstance(again, AuthFailure) and again.code == "stale_nonce"
    auth.answered()
    assert auth.challenge(error(438, "Stale Nonce", (NONCE, b"n4"))) is True


def test_other_errors_are_no_authentication_matter() -> None:
    assert TurnAuth(None).challenge(error(486, "Allocation Quota Reached")) is False


def test_401_without_realm_or_nonce_is_named() -> None:
    outcome = TurnAuth(TurnCredentials("a", "b")).challenge(error(401, "Unauthorized"))
    assert isinstance(outcome, AuthFailure) and "REALM or NONCE" in outcome.message


def test_rest_password_matches_openssl() -> None:
    credentials = rest_credentials("s3cr3t", "siptool", 1700000000)
    assert credentials.username == "1700000000:siptool"
    assert credentials.password == "ooGUVuwLr9qeWmdigviXE+Wx2/4="
    assert credentials.mode == REST_SECRET
    assert "ooGUV" not in repr(credentials)
