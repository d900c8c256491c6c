"""The exporter's pure parts: the TOML modules (commands/exporter_config.py), the request head
(net/http_server.py) and the probe timeout; the exporter itself runs against real peers and a
real Prometheus in tests/integration/test_exporter.py."""

from __future__ import annotations

import pytest

from siptool.commands.exporter import check_target, probe_timeout
from siptool.commands.exporter_config import Module, parse_modules
from siptool.errors import UsageError
from siptool.net.http_server import BadRequest, Response, encode, parse_head, wants_keep_alive


def test_module_keys_become_the_prober_s_flags() -> None:
    modules = parse_modules(
        {
            "modules": {
                "trunk": {
                    "prober": "options-ping", "timeout": 3, "transport": "tls",
                    "insecure": True, "ws_path": "/sip", "header": ["X-A: 1", "X-B: 2"],
                    "count": 2, "ipv6_only": False,
                },
                "any": {"prober": "send", "method": "INFO"},
            }
        },
        "test.toml",
    )  # fmt: skip
    trunk = modules["trunk"]
    assert trunk == Module(
        "trunk", "options-ping", 3.0,
        ("--transport", "tls", "--insecure", "--ws-path", "/sip", "--header", "X-A: 1",
         "--header", "X-B: 2", "--count", "2"),
    )  # fmt: skip
    assert modules["any"].positional == ("INFO",) and modules["any"].timeout == 5.0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"prober": "register", "password": "x"}, "'password' in the config; put it in a file"),
        ({"prober": "turn-probe", "secret": "x"}, "named by 'secret_file'"),
        ({"prober": "options-ping", "json": True}, "'json' is the exporter's"),
        ({"prober": "options-ping", "timeout": 0}, "timeout must be a number"),
        ({"prober": "options-ping", "timeout": True}, "timeout must be a number"),
        ({"prober": "nmap"}, "prober must be one of"),
        ({"prober": "send"}, "send needs 'method'"),
        ({"prober": "options-ping", "header": {"a": 1}}, "must be a string, number, boolean"),
    ],
)
def test_a_bad_module_is_named_with_its_fault(table: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_modules({"modules": {"m": table}}, "test.toml")
    assert caught.value.message.startswith("test.toml: module 'm': ") and message in str(
        caught.value
    )


def test_a_config_without_modules_is_refused() -> None:
    for data in ({}, {"modules": {}}, {"module": {"a": {}}}):
        with pytest.raises(UsageError):
            parse_modules(data, "test.toml")


def test_request_head() -> None:
    request = parse_head(
        b"GET /probe?module=options&target=sip%3A127.0.0.1%3A5060 HTTP/1.1\r\n"
        b"Host: x\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n"
    )
    assert request.path == "/probe"
    assert request.query == {"module": ["options"], "target": ["sip:127.0.0.1:5060"]}
    assert request.headers["x-prometheus-scrape-timeout-seconds"] == "10"
    assert wants_keep_alive(request)
    assert not wants_keep_alive(parse_head(b"GET / HTTP/1.0\r\n"))
    assert not wants_keep_alive(parse_head(b"GET / HTTP/1.1\r\nConnection: close\r\n"))


@pytest.mark.parametrize(
    "head",
    [b"GET /\r\n", b"GET / SIP/2.0\r\n", b"GET / HTTP/1.1\r\nno colon\r\n",
     b"GET \xff HTTP/1.1\r\n", b"GET / HTTP/1.1\r\n Folded: x\r\n"],
)  # fmt: skip
def test_a_malformed_head_is_a_bad_request(head: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_head(head)


def test_an_answer_has_its_length_and_head_has_no_body() -> None:
    answer = encode(Response(200, "é\n"), head_only=False, keep_alive=True)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 3\r\n" in answer
    assert answer.endswith(b"\r\n\r\n" + "é\n".encode())
    assert encode(Response(200, "x"), head_only=True, keep_alive=False).endswith(
        b"Connection: close\r\n\r\n"
    )


def test_target_checks() -> None:
    assert (
        check_target("sip:trunk.example.com;transport=tls") == "sip:trunk.example.com;transport=tls"
    )
    for bad in ("", "a b", "-v", "sip:alice:pw@host", "x" * 2000, "sip:\x00"):
        with pytest.raises(UsageError):
            check_target(bad)


def test_the_scrape_timeout_less_the_margin_wins_when_shorter() -> None:
    module = Module("m", "options-ping", 5.0, ())
    assert probe_timeout(module, None) == 5.0
    assert probe_timeout(module, 10.0) == 5.0
    assert probe_timeout(module, 2.0) == 1.5
    assert probe_timeout(module, 0.3) == 0.2  # never below MIN_TIMEOUT


def test_a_bug_in_a_probe_is_a_500_and_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from siptool.commands.exporter import Exporter, ExporterOptions
    from siptool.net.http_server import Request

    async def broken(module: Module, target: str, timeout: float) -> object:
        raise RuntimeError("boom")

    async def main() -> Response:
        modules = {"m": Module("m", "options-ping", 1.0, ())}
        options = ExporterOptions(modules, "127.0.0.1", 0, 1, False, broken, lambda s: s)  # type: ignore[arg-type]
        request = Request("GET", "/probe", {"module": ["m"], "target": ["sip:x"]}, {}, "HTTP/1.1")
        return await Exporter(options).handle(request)

    answer = asyncio.run(main())
    assert answer.status == 500 and answer.body == "internal error: RuntimeError\n"
    assert capsys.readouterr().err == (
        "siptool exporter: internal error, a bug in siptool: RuntimeError: boom\n"
    )
