"""Digest authentication: RFC example vectors, the client loop guard, challenge parsing."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siptool.errors import ParseError
from siptool.sip import auth
from siptool.sip.auth import (
    AuthState,
    DigestChallenge,
    DigestCredentials,
    DigestSession,
    UnsupportedAlgorithm,
    choose_challenge,
    parse_challenge,
)
from siptool.sip.message import SipMessage, parse_message
from tests.support.asserts import parse_error

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _params(value: str) -> dict[str, str]:
    """The auth-params of an Authorization value (same grammar as a challenge, RFC 3261 §25.1)."""
    return dict(parse_challenge(value).params)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# -- RFC example vectors -------------------------------------------------------------------------

RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)

RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def test_rfc2617_section_3_5_md5_qop_auth_response() -> None:
    session = DigestSession(
        parse_challenge(RFC2617_CHALLENGE), DigestCredentials("Mufasa", "Circle Of Life")
    )
    value = session.authorization("GET", "/dir/index.html", cnonce="0a4f113b")
    params = _params(value)
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["nc"] == "00000001"
    assert params["qop"] == "auth"  # auth-int is offered too, but auth is preferred
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert params["cnonce"] == "0a4f113b"
    assert params["uri"] == "/dir/index.html"
    assert params["username"] == "Mufasa"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_section_3_9_1_examples(algorithm: str, expected: str) -> None:
    challenge = parse_challenge(RFC7616_CHALLENGE.format(alg=algorithm))
    assert challenge.algorithm == algorithm
    assert challenge.qop_options == ("auth", "auth-int")
    session = DigestSession(challenge, DigestCredentials("Mufasa", "Circle of Life"))
    value = session.authorization("GET", "/dir/index.html", cnonce=RFC7616_CNONCE)
    params = _params(value)
    assert params["response"] == expected
    assert params["algorithm"] == algorithm
    assert params["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    # RFC 7616 §3.4: qop and nc are tokens, the rest quoted.
    assert "qop=auth," in value and "nc=00000001" in value
    assert 'cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"' in value


def test_sha512_256_is_the_fips_hash_not_truncated_sha512() -> None:
    # FIPS 180-4 example "abc" for SHA-512/256.
    digest = auth._hasher("SHA-512-256")(b"abc")
    assert digest == "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
    assert digest != hashlib.sha512(b"abc").hexdigest()[:64]


def test_md5_sess_hashes_nonce_and_cnonce_into_a1() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", algorithm=md5-sess, qop="auth"')
    assert challenge.algorithm == "MD5-sess"
    session = DigestSession(challenge, DigestCredentials("u", "p"))
    params = _params(session.authorization("REGISTER", "sip:r", cnonce="c"))
    ha1 = _md5(f"{_md5('u:r:p')}:n:c")
    expected = _md5(f"{ha1}:n:00000001:c:auth:{_md5('REGISTER:sip:r')}")
    assert params["response"] == expected
    assert params["algorithm"] == "MD5-sess"
    # Differs from plain MD5 for the same inputs.
    plain = DigestSession(
        parse_challenge('Digest realm="r", nonce="n", qop="auth"'), session.credentials
    )
    assert _params(plain.authorization("REGISTER", "sip:r", cnonce="c"))["response"] != expected


def test_sha256_sess_and_sha512_256_sess_compute() -> None:
    for alg, name in (("SHA-256-sess", "sha256"), ("SHA-512-256-sess", "sha512_256")):

        def h(text: str, name: str = name) -> str:
            return hashlib.new(name, text.encode()).hexdigest()

        challenge = parse_challenge(f'Digest realm="r", nonce="n", algorithm={alg}, qop="auth"')
        session = DigestSession(challenge, DigestCredentials("u", "p"))
        params = _params(session.authorization("INVITE", "sip:b@r", cnonce="c"))
        ha1 = h(f"{h('u:r:p')}:n:c")
        assert params["response"] == h(f"{ha1}:n:00000001:c:auth:{h('INVITE:sip:b@r')}")


def test_auth_int_only_when_it_is_the_only_qop_and_hashes_the_body() -> None:
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    only_int = parse_challenge('Digest realm="r", nonce="n", qop="auth-int"')
    session = DigestSession(only_int, DigestCredentials("u", "p"))
    assert session.qop == "auth-int"
    params = _params(session.authorization("INVITE", "sip:b@r", body=body, cnonce="c"))
    ha2 = _md5(f"INVITE:sip:b@r:{hashlib.md5(body).hexdigest()}")
    assert params["qop"] == "auth-int"
    assert params["response"] == _md5(f"{_md5('u:r:p')}:n:00000001:c:auth-int:{ha2}")
    both = parse_challenge('Digest realm="r", nonce="n", qop="auth-int,auth"')
    assert DigestSession(both, DigestCredentials("u", "p")).qop == "auth"


def test_no_qop_gives_rfc2069_response_without_nc_or_cnonce() -> None:
    session = DigestSession(
        parse_challenge('Digest realm="r", nonce="n"'), DigestCredentials("u", "p")
    )
    value = session.authorization("REGISTER", "sip:r")
    params = _params(value)
    assert params["response"] == _md5(f"{_md5('u:r:p')}:n:{_md5('REGISTER:sip:r')}")
    assert "nc" not in params and "cnonce" not in params and "qop" not in params
    assert "opaque" not in params


def test_unknown_qop_values_are_ignored() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth-conf"')
    assert DigestSession(challenge, DigestCredentials("u", "p")).qop is None


def test_userhash_sends_hashed_username() -> None:
    challenge = parse_challenge(
        'Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256, userhash=true'
    )
    assert challenge.userhash
    session = DigestSession(challenge, DigestCredentials("Jäsøn", "p"))
    value = session.authorization("REGISTER", "sip:r", cnonce="c")
    params = _params(value)
    assert params["username"] == hashlib.sha256("Jäsøn:r".encode()).hexdigest()
    assert params["userhash"] == "true"


def test_username_with_quote_and_backslash_is_escaped() -> None:
    session = DigestSession(
        parse_challenge('Digest realm="r", nonce="n", qop="auth"'),
        DigestCredentials('a"b\\c', "p"),
    )
    value = session.authorization("REGISTER", "sip:r", cnonce="c")
    assert 'username="a\\"b\\\\c"' in value
    assert _params(value)["username"] == 'a"b\\c'


def test_nc_increments_per_request_and_restarts_with_a_new_nonce() -> None:
    session = DigestSession(
        parse_challenge('Digest realm="r", nonce="n1", qop="auth"'), DigestCredentials("u", "p")
    )
    ncs = [_params(session.authorization("REGISTER", "sip:r"))["nc"] for _ in range(3)]
    assert ncs == ["00000001", "00000002", "00000003"]
    session.update(parse_challenge('Digest realm="r", nonce="n1", qop="auth"'))
    assert _params(session.authorization("REGISTER", "sip:r"))["nc"] == "00000004"
    session.update(parse_challenge('Digest realm="r", nonce="n2", qop="auth"'))
    assert _params(session.authorization("REGISTER", "sip:r"))["nc"] == "00000001"


def test_nc_is_eight_lowercase_hex_digits() -> None:
    session = DigestSession(
        parse_challenge('Digest realm="r", nonce="n", qop="auth"'), DigestCredentials("u", "p")
    )
    session.nc = 0xABC - 1
    assert _params(session.authorization("REGISTER", "sip:r"))["nc"] == "00000abc"


def test_fresh_cnonce_per_request_by_default() -> None:
    session = DigestSession(
        parse_challenge('Digest realm="r", nonce="n", qop="auth"'), DigestCredentials("u", "p")
    )
    first = _params(session.authorization("REGISTER", "sip:r"))["cnonce"]
    second = _params(session.authorization("REGISTER", "sip:r"))["cnonce"]
    assert first != second and len(first) >= 16


def test_unknown_algorithm_raises_unsupported_with_its_name() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", algorithm=SHA-1')
    assert not challenge.supported
    with pytest.raises(UnsupportedAlgorithm, match="SHA-1"):
        DigestSession(challenge, DigestCredentials("u", "p"))


def test_missing_openssl_hash_raises_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    real_new = hashlib.new

    def fake_new(name: str, *args: object) -> object:
        if name == "sha512_256":
            raise ValueError("unsupported hash type")
        return real_new(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(hashlib, "new", fake_new)
    challenge = parse_challenge('Digest realm="r", nonce="n", algorithm=SHA-512-256')
    with pytest.raises(UnsupportedAlgorithm, match="OpenSSL"):
        DigestSession(challenge, DigestCredentials("u", "p"))
    assert "SHA-512-256" not in auth.supported_algorithms()
    # ... and choose_challenge falls back to what can be computed.
    chosen = choose_challenge(
        [
            'Digest realm="r", nonce="a", algorithm=SHA-512-256',
            'Digest realm="r", nonce="b", algorithm=MD5',
        ]
    )
    assert chosen.nonce == "b"


# -- choose_challenge ----------------------------------------------------------------------------


def _ch(alg: str, nonce: str) -> str:
    return f'Digest realm="r", nonce="{nonce}", algorithm={alg}, qop="auth"'


def test_choose_prefers_strongest_algorithm_regardless_of_order() -> None:
    values = [_ch("MD5", "1"), _ch("SHA-512-256", "2"), _ch("SHA-256", "3")]
    assert choose_challenge(values).algorithm == "SHA-512-256"
    assert choose_challenge(values[::-1]).algorithm == "SHA-512-256"
    assert choose_challenge([_ch("MD5", "1"), _ch("SHA-256", "3")]).algorithm == "SHA-256"


def test_choose_ranks_sess_with_its_hash_and_ties_go_to_the_topmost() -> None:
    assert choose_challenge([_ch("SHA-256-sess", "1"), _ch("MD5", "2")]).nonce == "1"
    assert choose_challenge([_ch("SHA-256", "1"), _ch("SHA-256-sess", "2")]).nonce == "1"
    assert choose_challenge([_ch("MD5-sess", "1"), _ch("MD5", "2")]).nonce == "1"
    assert choose_challenge([_ch("SHA-512-256-sess", "1"), _ch("SHA-256", "2")]).nonce == "1"


def test_choose_topmost_supported_when_not_strongest() -> None:
    values = [_ch("SHA-1", "0"), _ch("MD5", "1"), _ch("SHA-256", "2")]
    assert choose_challenge(values, strongest=False).nonce == "1"


def test_choose_skips_unsupported_and_non_digest() -> None:
    values = ['Basic realm="r"', _ch("SHA-1", "0"), "garbage ===", _ch("MD5", "1")]
    assert choose_challenge(values).nonce == "1"


def test_choose_with_nothing_usable() -> None:
    with pytest.raises(ParseError, match="no usable Digest"):
        choose_challenge(['Basic realm="r"'])
    with pytest.raises(ParseError):
        choose_challenge([])
    with pytest.raises(UnsupportedAlgorithm, match="SHA-1"):
        choose_challenge([_ch("SHA-1", "0")])


def test_choose_reads_several_challenges_in_one_header_value() -> None:
    value = f'Basic realm="x", {_ch("MD5", "1")}, {_ch("SHA-256", "2")}'
    assert choose_challenge([value]).nonce == "2"


# -- parse_challenge robustness ------------------------------------------------------------------


def test_parse_full_challenge() -> None:
    c = parse_challenge(
        'digest REALM="atlanta.com", Domain="sip:ss1.carrier.com", qop="auth", '
        'nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=md5'
    )
    assert c == DigestChallenge(
        realm="atlanta.com",
        nonce="f84f1cec41e6cbe5aea9c8e88d359",
        opaque="",
        algorithm="MD5",
        qop_options=("auth",),
        stale=False,
        domain="sip:ss1.carrier.com",
    )
    assert c.params["domain"] == "sip:ss1.carrier.com"


def test_parse_defaults() -> None:
    c = parse_challenge('Digest realm="r",nonce="n"')
    assert (c.algorithm, c.qop_options, c.stale, c.userhash, c.opaque) == (
        "MD5",
        (),
        False,
        False,
        None,
    )


def test_parse_escapes_commas_in_quotes_and_lws() -> None:
    c = parse_challenge(
        'Digest  realm = "a \\"quoted\\", realm\\\\" ,\r\n nonce="x,y=z", stale = TRUE,, qop=auth'
    )
    assert c.realm == 'a "quoted", realm\\'
    assert c.nonce == "x,y=z"
    assert c.stale is True
    assert c.qop_options == ("auth",)


def test_parse_unquoted_base64_nonce_and_first_duplicate_wins() -> None:
    c = parse_challenge("Digest realm=r, nonce=abc/def+g==, nonce=other")
    assert c.nonce == "abc/def+g=="


def test_parse_real_kamailio_challenge() -> None:
    # From shared/captures/sip-register-digest-auth.pcapng (Kamailio 5.6).
    c = parse_challenge(
        'Digest realm="127.0.0.1", nonce="awT12msE9K5D2c+pf4q/rVG9WRq+Oe1a", qop="auth"'
    )
    assert (c.realm, c.nonce, c.qop_options) == (
        "127.0.0.1",
        "awT12msE9K5D2c+pf4q/rVG9WRq+Oe1a",
        ("auth",),
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Basic realm="r"', "not a Digest"),
        ("", "empty"),
        ("Digest", "without realm"),
        ('Digest realm="r"', "without nonce"),
        ('Digest realm="r, nonce=n', "unterminated"),
        ('Digest realm="r" nonce="n"', "expected ','"),
        ("Digest realm", "no '='"),
        ("Digest realm=, nonce=n", "empty value"),
        ('Digest =x, nonce="n"', "parameter name"),
        ("Digest@ realm=r", "bad auth scheme"),
    ],
)
def test_parse_errors(value: str, message: str) -> None:
    parse_error(parse_challenge, value, message)


_FUZZ_ALPHABET = st.sampled_from(list('Digest realm=nonce"\\, \t\r\nqop=auth-int;=/+_Basicé\x00'))


@FUZZ
@given(st.one_of(st.text(), st.text(_FUZZ_ALPHABET, max_size=60)))
def test_parse_arbitrary_strings_raise_only_parse_error(value: str) -> None:
    try:
        c = parse_challenge(value)
    except ParseError:
        return
    assert isinstance(c.realm, str) and isinstance(c.nonce, str)


@FUZZ
@given(st.lists(st.text(_FUZZ_ALPHABET, max_size=60), max_size=4))
def test_choose_arbitrary_values_raise_only_siptool_errors(values: list[str]) -> None:
    with contextlib.suppress(ParseError, UnsupportedAlgorithm):
        assert choose_challenge(values).supported


@FUZZ
@given(
    realm=st.text(max_size=20),
    nonce=st.text(min_size=1, max_size=20),
    opaque=st.text(max_size=20),
)
def test_quoted_values_round_trip(realm: str, nonce: str, opaque: str) -> None:
    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    c = parse_challenge(f"Digest realm={q(realm)}, nonce={q(nonce)}, opaque={q(opaque)}")
    assert (c.realm, c.nonce, c.opaque) == (realm, nonce, opaque)


# -- AuthState: the client flow ------------------------------------------------------------------


def _register() -> SipMessage:
    return parse_message(
        b"REGISTER sip:example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa\r\n"
        b"From: <sip:alice@example.com>;tag=1\r\n"
        b"To: <sip:alice@example.com>\r\n"
        b"Call-ID: c1\r\n"
        b"CSeq: 1 REGISTER\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def _challenge_response(status: int, *values: str) -> SipMessage:
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    reason = "Unauthorized" if status == 401 else "Proxy Authentication Required"
    lines = "".join(f"{header}: {v}\r\n" for v in values)
    return parse_message(
        f"SIP/2.0 {status} {reason}\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n{lines}"
        "Content-Length: 0\r\n\r\n".encode()
    )


def _state() -> AuthState:
    return AuthState(DigestCredentials("alice", "secret"), cnonce_factory=lambda: "cn")


def test_first_401_retries_and_apply_adds_authorization() -> None:
    state = _state()
    assert state.report().to_dict() == {"scheme": None, "algorithm": None, "qop": None, "rounds": 0}
    assert state.on_challenge(_challenge_response(401, _ch("MD5", "n1"))) == "retry"
    request = _register()
    state.apply(request)
    value = request.header("Authorization")
    assert value is not None and request.header("Proxy-Authorization") is None
    params = _params(value)
    assert params["uri"] == "sip:example.com" and params["username"] == "alice"
    ha2 = _md5("REGISTER:sip:example.com")
    assert params["response"] == _md5(f"{_md5('alice:r:secret')}:n1:00000001:cn:auth:{ha2}")
    assert state.report().to_dict() == {
        "scheme": "Digest",
        "algorithm": "MD5",
        "qop": "auth",
        "rounds": 1,
    }


def test_407_is_answered_with_proxy_authorization() -> None:
    state = _state()
    assert state.on_challenge(_challenge_response(407, _ch("SHA-256", "n1"))) == "retry"
    request = _register()
    state.apply(request)
    assert request.header("Proxy-Authorization") is not None
    assert request.header("Authorization") is None
    assert state.report().algorithm == "SHA-256"


def test_401_reads_only_www_authenticate() -> None:
    response = parse_message(
        b"SIP/2.0 401 Unauthorized\r\nProxy-Authenticate: "
        + _ch("MD5", "n").encode()
        + b"\r\nContent-Length: 0\r\n\r\n"
    )
    state = _state()
    assert state.on_challenge(response) == "unsupported"
    assert state.error is not None and "WWW-Authenticate" in state.error


def test_second_challenge_after_credentials_is_wrong_credentials() -> None:
    state = _state()
    assert state.on_challenge(_challenge_response(401, _ch("MD5", "n1"))) == "retry"
    state.apply(_register())
    assert state.on_challenge(_challenge_response(401, _ch("MD5", "n2"))) == "wrong_credentials"
    # Never loops: asking again still says wrong_credentials.
    state.apply(_register())
    assert state.on_challenge(_challenge_response(401, _ch("MD5", "n3"))) == "wrong_credentials"
    assert state.report().rounds == 1


def test_stale_challenge_retries_once_with_new_nonce_and_reset_nc() -> None:
    state = _state()
    assert state.on_challenge(_challenge_response(401, _ch("MD5", "n1"))) == "retry"
    first = _register()
    state.apply(first)
    stale = _ch("MD5", "n2") + ", stale=true"
    assert state.on_challenge(_challenge_response(401, stale)) == "retry"
    second = _register()
    state.apply(second)
    params = _params(second.header("Authorization") or "")
    assert params["nonce"] == "n2" and params["nc"] == "00000001"
    # A second stale after the retry is not believed.
    stale3 = _ch("MD5", "n3") + ", stale=true"
    assert state.on_challenge(_challenge_response(401, stale3)) == "wrong_credentials"
    assert state.report().rounds == 2


def test_stale_on_the_first_challenge_is_just_a_challenge() -> None:
    state = _state()
    assert state.on_challenge(_challenge_response(401, _ch("MD5", "n") + ", stale=true")) == "retry"
    state.apply(_register())
    assert state.on_challenge(_challenge_response(401, _ch("MD5", "m") + ", stale=true")) == "retry"


def test_challenge_without_credentials_sent_retries() -> None:
    state = _state()
    assert state.on_challenge(_challenge_response(401, _ch("MD5", "n1"))) == "retry"
    # The caller did not apply() (no request sent with credentials): not a rejection.
    assert state.on_challenge(_challenge_response(401, _ch("MD5", "n2"))) == "retry"


def test_proxy_then_registrar_challenges_both_answered() -> None:
    state = _state()
    assert state.on_challenge(_challenge_response(407, _ch("MD5", "p1"))) == "retry"
    state.apply(_register())
    registrar = 'Digest realm="registrar", nonce="r1", qop="auth"'
    assert state.on_challenge(_challenge_response(401, registrar)) == "retry"
    request = _register()
    state.apply(request)
    proxy_params = _params(request.header("Proxy-Authorization") or "")
    assert proxy_params["nonce"] == "p1" and proxy_params["nc"] == "00000002"
    assert _params(request.header("Authorization") or "")["realm"] == "registrar"
    assert len(request.header_fields("Authorization")) == 1


def test_apply_replaces_previous_credentials() -> None:
    state = _state()
    state.on_challenge(_challenge_response(401, _ch("MD5", "n1")))
    request = _register()
    state.apply(request)
    state.apply(request)
    fields = request.header_fields("Authorization")
    assert len(fields) == 1 and _params(fields[0].value)["nc"] == "00000002"


def test_apply_before_any_challenge_adds_nothing() -> None:
    request = _register()
    _state().apply(request)
    assert request.header("Authorization") is None


def test_restart_allows_a_new_flow_with_cached_nonce() -> None:
    state = _state()
    state.on_challenge(_challenge_response(401, _ch("MD5", "n1")))
    state.apply(_register())
    state.restart()  # that REGISTER got 200; later a refresh:
    refresh = _register()
    state.apply(refresh)
    assert _params(refresh.header("Authorization") or "")["nc"] == "00000002"
    stale = _ch("MD5", "n2") + ", stale=true"
    assert state.on_challenge(_challenge_response(401, stale)) == "retry"


def test_unsupported_challenges() -> None:
    state = _state()
    assert state.on_challenge(_challenge_response(401, 'Basic realm="r"')) == "unsupported"
    assert state.on_challenge(_challenge_response(401, _ch("SHA-1", "n"))) == "unsupported"
    assert state.error is not None and "SHA-1" in state.error
    assert state.on_challenge(_challenge_response(401)) == "unsupported"
    assert state.last_outcome == "unsupported"


def test_realm_flood_gives_up() -> None:
    state = _state()
    outcomes = []
    for k in range(6):
        outcomes.append(
            state.on_challenge(_challenge_response(401, f'Digest realm="r{k}", nonce="n"'))
        )
        state.apply(_register())
    assert outcomes[:4] == ["retry"] * 4 and outcomes[4] == "unsupported"


def test_on_challenge_rejects_other_statuses() -> None:
    ok = parse_message(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(ValueError, match="401 or 407"):
        _state().on_challenge(ok)


def test_password_not_in_repr() -> None:
    assert "secret" not in repr(DigestCredentials("alice", "secret"))
