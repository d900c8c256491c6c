"""Reading TLS connections in a capture: their handshakes always, their records with a key log.

``capture.tcp`` hands each TLS direction's bytes, in sequence order, to a ``TlsReader``; the two
readers of one connection share a ``TlsConnection`` (found by ``TlsContext`` from the
addresses), which keeps the connection's summary (``capture.model.TlsSession``).

- The handshake is read in the clear: the ClientHello's random (the key log's index, RFC 8446
  §4.1.2) and server name, the ServerHello's random, cipher suite and version (its
  supported_versions extension for TLS 1.3, §4.2.1; a HelloRetryRequest, §4.1.3, is skipped).
- With a key log and a suite of ``capture.tls_keys``, the records are decrypted:
  - TLS 1.2: each direction's records after its ChangeCipherSpec (RFC 5246 §7.1);
  - TLS 1.3: every application_data record (§5.2), with the handshake traffic keys until the
    direction's Finished, then the application keys, then a new generation at each KeyUpdate
    (§4.6.3). A key log with only the application secrets still works: a record that fails
    with the handshake key is tried with the application key from sequence 0.
  Decrypted application data goes to ``on_plain`` in order; the decrypted handshake messages
  only move the keys.
- Without keys (no key log, no line for the client random, a suite not decrypted here, or a
  handshake the capture missed), the connection is named in the summary with the reason and
  the direction stops being read (``done``): its bytes are only counted.  A key log that is
  followed (a live capture) is read again at each record of a connection whose keys are not
  there yet, the records held meanwhile (at most ``_MAX_PENDING`` per direction).
- Faults are named through ``on_problem`` and stop the direction, since TLS cannot resume
  after them: bytes that are not a record header, a record that fails authentication, bytes
  lost in the capture, a record cut short at the end.
"""

from __future__ import annotations

from collections.abc import Callable

from siptool.capture.keylog import (
    CLIENT_RANDOM,
    TLS13_CLIENT_APPLICATION,
    TLS13_CLIENT_HANDSHAKE,
    TLS13_SERVER_APPLICATION,
    TLS13_SERVER_HANDSHAKE,
    KeyLog,
)
from siptool.capture.model import TlsSession
from siptool.capture.tls_keys import (
    SUITES,
    CipherSuite,
    RecordCipher,
    suite_name,
    tls12_ciphers,
    tls13_cipher,
    tls13_next_secret,
)
from siptool.capture.tlsrecord import is_tls_record

__all__ = ["PacketTag", "TlsConnection", "TlsContext", "TlsReader"]

# Where the bytes being fed came from: (input offset of the packet's record, frame, time).
PacketTag = tuple[int, int, float | None]

# Record content types (RFC 8446 §5.1).
_CHANGE_CIPHER_SPEC = 20
_ALERT = 21
_HANDSHAKE = 22
_APPLICATION_DATA = 23
# Handshake message types (RFC 8446 §4).
_CLIENT_HELLO = 1
_SERVER_HELLO = 2
_FINISHED = 20
_KEY_UPDATE = 24
_SUPPORTED_VERSIONS = 43
_TLS12 = 0x0303
_TLS13 = 0x0304
_VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", _TLS12: "TLS 1.2"}
_VERSIONS[_TLS13] = "TLS 1.3"
# RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest.
_HELLO_RETRY = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
_MAX_HANDSHAKE = 1 << 18  # a handshake message beyond this is not read (certificate chains fit)
_MAX_PENDING = 64  # records held until the keys are known


class TlsContext:
    """The key log (None without --tls-keylog) and every TLS connection seen so far."""

    __slots__ = ("_live", "keylog", "sessions")

    def __init__(self, keylog: KeyLog | None) -> None:
        self.keylog = keylog
        self.sessions: list[TlsSession] = []
        self._live: dict[tuple[str, str], TlsConnection] = {}  # (src, dst) of either side

    @property
    def keylog_followed(self) -> bool:
        return self.keylog is not None and self.keylog.follow

    @property
    def keylog_name(self) -> str:
        return self.keylog.name if self.keylog is not None else "the key log"

    def open(self, client: str, server: str, sni: str | None) -> TlsConnection:
        """A new connection (a ClientHello, or a first record that shows no handshake)."""
        conn = TlsConnection(self, TlsSession(client, server, sni))
        self.sessions.append(conn.session)
        self._live[(client, server)] = self._live[(server, client)] = conn
        return conn

    def find(self, src: str, dst: str) -> TlsConnection | None:
        return self._live.get((src, dst))


class TlsConnection:
    """One connection's handshake state, keys and summary, shared by its two readers."""

    __slots__ = (
        "_missing",
        "_secrets",
        "_server_random",
        "client",
        "client_random",
        "context",
        "server",
        "session",
        "suite",
        "tls13",
    )

    def __init__(self, context: TlsContext, session: TlsSession) -> None:
        self.context = context
        self.session = session
        self.client: TlsReader | None = None
        self.server: TlsReader | None = None
        self.client_random: bytes | None = None
        self.suite: CipherSuite | None = None
        self.tls13 = False
        self._secrets: dict[str, bytes] = {}
        self._server_random = b""
        self._missing: str | None = None  # why the keys are not there yet (a followed key log)

    @property
    def awaiting_keys(self) -> bool:
        return self._missing is not None

    def retry_keys(self) -> bool:
        """Whether the keys came since (the key log re-read); False while they have not."""
        keylog = self.context.keylog
        if self._missing is None or keylog is None or not keylog.refresh():
            return False
        return self._keys()

    def give_up_waiting(self) -> None:
        if self._missing is not None:
            missing, self._missing = self._missing, None
            self.refuse(missing)

    def refuse(self, reason: str) -> None:
        """The records cannot be decrypted: name why, stop reading both directions."""
        if self.session.reason is None and not self.session.decrypted:
            self.session.reason = reason
        for side in (self.client, self.server):
            if side is not None:
                side.done = True

    def server_hello(self, version: int, suite_code: int, server_random: bytes) -> None:
        """Keys for both directions from the ServerHello and the key log, if it has them."""
        session = self.session
        session.version = _VERSIONS.get(version, f"0x{version:04X}")
        session.cipher_suite = suite_name(suite_code)
        keylog = self.context.keylog
        if self.client_random is None:
            self.refuse("the handshake was not captured (no ClientHello)")
            return
        if version not in (_TLS12, _TLS13):
            self.refuse(f"{session.version} is not decrypted (TLS 1.2 and 1.3 only)")
            return
        suite = SUITES.get(suite_code)
        if suite is None or suite.tls13 != (version == _TLS13):
            self.refuse(
                f"cipher suite {session.cipher_suite} is not decrypted"
                " (AES-GCM and ChaCha20-Poly1305 only)"
            )
            return
        if keylog is None:
            self.refuse("no --tls-keylog")
            return
        self.suite = suite
        self.tls13 = suite.tls13
        self._server_random = server_random
        self._missing = f"no key for client random {self.client_random.hex()} in {keylog.name}"
        if not self._keys() and not (keylog.follow and keylog.path):
            self.give_up_waiting()

    def _keys(self) -> bool:
        """Both directions' keys from the key log; False when it has none for this session."""
        keylog, suite, client_random = self.context.keylog, self.suite, self.client_random
        assert keylog is not None and suite is not None and client_random is not None
        entry = keylog.secrets.get(client_random, {})
        client, server = self.client, self.server
        if self.tls13:
            self._secrets = dict(entry)
            pairs = (
                (client, TLS13_CLIENT_HANDSHAKE, TLS13_CLIENT_APPLICATION),
                (server, TLS13_SERVER_HANDSHAKE, TLS13_SERVER_APPLICATION),
            )
            if not any(entry.get(h) or entry.get(a) for _, h, a in pairs):
                return False
            self._missing = None
            for side, handshake, application in pairs:
                if side is not None:
                    side.keys_tls13(entry.get(handshake), entry.get(application))
        else:
            master = entry.get(CLIENT_RANDOM)
            if master is None:
                return False
            self._missing = None
            ciphers = tls12_ciphers(suite, master, client_random, self._server_random)
            if client is not None:
                client.pending_cipher = ciphers[0]
            if server is not None:
                server.pending_cipher = ciphers[1]
        for side in (client, server):
            if side is not None:
                side.flush()
        return True

    def application_cipher(self, is_client: bool) -> RecordCipher | None:
        """A TLS 1.3 direction's application key, read again from a followed key log when it
        was not there at the ServerHello (a client logs it after the server's Finished)."""
        label = TLS13_CLIENT_APPLICATION if is_client else TLS13_SERVER_APPLICATION
        secret = self._secrets.get(label)
        keylog = self.context.keylog
        if secret is None and keylog is not None and self.client_random is not None:
            keylog.refresh()
            secret = keylog.get(self.client_random, label)
            if secret is not None:
                self._secrets[label] = secret
        if secret is None or self.suite is None:
            return None
        return tls13_cipher(self.suite, secret)

    def next_secret(self, label: str) -> bytes | None:
        """A TLS 1.3 direction's next application secret (KeyUpdate), remembered for the next."""
        secret = self._secrets.get(label)
        if secret is None or self.suite is None:
            return None
        secret = self._secrets[label] = tls13_next_secret(self.suite, secret)
        return secret


class TlsReader:
    """One direction of a TLS connection, bytes in sequence order (``feed``, ``lose``,
    ``close``); ``done`` once nothing more of it can be read."""

    __slots__ = (
        "_buf",
        "_handshake",
        "_next",
        "_pending",
        "_trial",
        "_want_application",
        "cipher",
        "conn",
        "context",
        "done",
        "dst",
        "is_client",
        "on_plain",
        "on_problem",
        "pending_cipher",
        "position",
        "sni",
        "src",
        "tag",
    )

    def __init__(
        self,
        context: TlsContext,
        src: str,
        dst: str,
        sni: str | None,
        on_plain: Callable[[bytes], None],
        on_problem: Callable[[str], None],
    ) -> None:
        self.context = context
        self.src = src
        self.dst = dst
        self.sni = sni
        self.on_plain = on_plain
        self.on_problem = on_problem
        self.conn: TlsConnection | None = None
        self.is_client = False
        self.done = False
        self.position = 0  # stream bytes consumed (records read whole)
        self.cipher: RecordCipher | None = None  # the key records are decrypted with now
        self.pending_cipher: RecordCipher | None = None  # TLS 1.2: from ChangeCipherSpec on
        self._next: RecordCipher | None = None  # TLS 1.3: the application key, after Finished
        self._trial = False  # TLS 1.3 without handshake keys: try the application key
        self._want_application = False  # TLS 1.3: Finished seen, its key not logged yet
        self._buf = bytearray()
        self._handshake = bytearray()
        # Records held until the keys are known, with the ``tag`` of the packet that ended each.
        self._pending: list[tuple[bytes, bytes, PacketTag]] = []
        # The packet being fed (``on_plain`` reads it); a held record keeps its own.
        self.tag: PacketTag = (0, 0, None)

    # -- the byte stream ---------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        if self.done:
            return
        buf = self._buf
        buf += chunk
        p = 0
        size = len(buf)
        while size - p >= 5 and not self.done:
            if not is_tls_record(buf[p : p + 5]):
                self._fail(f"no TLS record header at stream byte {self.position}")
                break
            end = p + 5 + ((buf[p + 3] << 8) | buf[p + 4])
            if end > size:
                break
            self._record(bytes(buf[p : p + 5]), bytes(buf[p + 5 : end]))
            self.position += end - p
            p = end
        del buf[:p]

    def lose(self, nbytes: int) -> None:
        if not self.done:
            where = self.position + len(self._buf)
            self._fail(
                f"{nbytes} bytes lost in the capture at stream byte {where};"
                " the rest of this direction cannot be decrypted"
            )

    def close(self) -> None:
        if self.conn is not None:
            self.conn.give_up_waiting()
        buf = self._buf
        if self.done or not buf:
            return
        if len(buf) < 5:
            size = "a record header"
        else:
            size = f"{len(buf) - 5} of {(buf[3] << 8) | buf[4]} bytes"
        self._fail(f"a TLS record cut short at stream byte {self.position}: {size} captured")

    def _fail(self, text: str) -> None:
        self.done = True
        self._buf.clear()
        conn = self.conn
        if conn is not None and conn.session.reason is None and not conn.session.decrypted:
            conn.session.reason = text
        if self.context.keylog is not None:
            # Without a key log nothing would have been decrypted: the stream is only named.
            self.on_problem(text)

    # -- records -----------------------------------------------------------------------------

    def _record(self, header: bytes, fragment: bytes) -> None:
        ctype = header[0]
        conn = self.conn
        if conn is None:
            conn = self._connect(ctype, fragment)
            if conn is None:
                return
        if conn.awaiting_keys and not conn.retry_keys():
            if len(self._pending) < _MAX_PENDING:
                self._pending.append((header, fragment, self.tag))
            else:
                conn.give_up_waiting()
            return
        if self._want_application and ctype == _APPLICATION_DATA:
            # TLS 1.3 after this direction's Finished, its application secret not logged yet.
            cipher = conn.application_cipher(self.is_client)
            if cipher is None:
                if len(self._pending) < _MAX_PENDING and conn.context.keylog_followed:
                    self._pending.append((header, fragment, self.tag))
                else:
                    name = conn.context.keylog_name
                    conn.refuse(f"no application traffic secret for {self.src} in {name}")
                return
            self.cipher, self._want_application = cipher, False
            self.flush()
        if (self.cipher is not None or self._trial) and (
            not conn.tls13 or ctype == _APPLICATION_DATA
        ):
            self._decrypt(header, fragment)
            return
        if ctype == _HANDSHAKE:
            self._handshake_bytes(fragment)
        elif ctype == _CHANGE_CIPHER_SPEC:
            if not conn.tls13 and self.pending_cipher is not None:
                self.cipher, self.pending_cipher = self.pending_cipher, None
            elif not conn.tls13 and conn.suite is None and conn.session.version is None:
                conn.refuse("the handshake was not captured (no ServerHello)")
        elif ctype == _APPLICATION_DATA:
            if conn.session.version is None and len(self._pending) < _MAX_PENDING:
                self._pending.append((header, fragment, self.tag))  # the keys may still come
            elif conn.session.version is None:
                conn.refuse("the handshake was not captured (no ServerHello)")
            else:
                conn.refuse(conn.session.reason or "no keys for its records")

    def _connect(self, ctype: int, fragment: bytes) -> TlsConnection | None:
        """The connection this direction belongs to, found or opened at its first record."""
        context = self.context
        conn = context.find(self.src, self.dst)
        first_message = fragment[0] if ctype == _HANDSHAKE and fragment else -1
        if first_message == _CLIENT_HELLO or conn is None:
            if first_message == _CLIENT_HELLO:
                conn = context.open(self.src, self.dst, self.sni)
                self.is_client = True
            elif first_message == _SERVER_HELLO:
                conn = context.open(self.dst, self.src, None)
            else:
                # A capture begun mid-connection: the lower port is most likely the server's.
                conn = context.open(self.src, self.dst, None)
                self.is_client = True
                self.conn = conn
                conn.client = self
                conn.refuse("the handshake was not captured")
                return None
        if self.is_client:
            conn.client = self
        else:
            conn.server = self
        self.conn = conn
        if conn.session.reason is not None:
            self.done = True  # the other direction found it cannot be read
            return None
        return conn

    def _decrypt(self, header: bytes, fragment: bytes) -> None:
        conn = self.conn
        assert conn is not None
        result = None
        if self.cipher is not None:
            result = self.cipher.decrypt(header, fragment)
        if result is None and self._next is not None and self._trial:
            # TLS 1.3 without the handshake keys, or a record the handshake key cannot open:
            # the application key, from its first record (RFC 8446 §5.3: sequence 0).
            trial = self._next
            trial.seq = 0
            result = trial.decrypt(header, fragment)
            if result is not None:
                self.cipher, self._next, self._trial = trial, None, False
            elif self.cipher is None:
                return  # an encrypted handshake record: wait for the application data
        if result is None:
            self._fail(
                f"a TLS record at stream byte {self.position} fails authentication"
                " (wrong or stale keys in the key log?)"
            )
            return
        ctype, plain = result
        if ctype == _APPLICATION_DATA:
            conn.session.decrypted = True
            conn.session.reason = None
            conn.session.records += 1
            if plain:
                self.on_plain(plain)
        elif ctype == _HANDSHAKE and conn.tls13:
            self._handshake_bytes(plain)
        # Alerts (close_notify) and TLS 1.2's encrypted Finished end nothing decode needs.

    def keys_tls13(self, handshake: bytes | None, application: bytes | None) -> None:
        conn = self.conn
        assert conn is not None and conn.suite is not None
        suite = conn.suite
        self.cipher = tls13_cipher(suite, handshake) if handshake else None
        self._next = tls13_cipher(suite, application) if application else None
        self._trial = self._next is not None
        if self.cipher is None and self._next is None:
            conn.refuse(f"no traffic secret for {self.src} in {conn.context.keylog_name}")

    def flush(self) -> None:
        """The records held until the keys were known."""
        pending, self._pending = self._pending, []
        current = self.tag
        for header, fragment, tag in pending:
            if self.done:
                break
            self.tag = tag
            self._record(header, fragment)
        self.tag = current

    # -- handshake messages ------------------------------------------------------------------

    def _handshake_bytes(self, data: bytes) -> None:
        hs = self._handshake
        hs += data
        p = 0
        while len(hs) - p >= 4:
            size = (hs[p + 1] << 16) | (hs[p + 2] << 8) | hs[p + 3]
            if size > _MAX_HANDSHAKE:
                hs.clear()
                return
            if len(hs) - p - 4 < size:
                break
            self._message(hs[p], bytes(hs[p + 4 : p + 4 + size]))
            p += 4 + size
            if self.done:
                return
        del hs[:p]

    def _message(self, kind: int, body: bytes) -> None:
        conn = self.conn
        assert conn is not None
        if kind == _CLIENT_HELLO and len(body) >= 34 and self.is_client:
            conn.client_random = body[2:34]
        elif kind == _SERVER_HELLO and not self.is_client and conn.session.version is None:
            hello = _server_hello(body)
            if hello is not None and hello[2] != _HELLO_RETRY:
                conn.server_hello(*hello)
        elif kind == _FINISHED and conn.tls13:
            if self._next is None:
                self._next = conn.application_cipher(self.is_client)
            self.cipher, self._next, self._trial = self._next, None, False
            self._want_application = self.cipher is None
        elif kind == _KEY_UPDATE and conn.tls13 and conn.suite is not None:
            label = TLS13_CLIENT_APPLICATION if self.is_client else TLS13_SERVER_APPLICATION
            secret = conn.next_secret(label)
            if secret is not None:
                self.cipher = tls13_cipher(conn.suite, secret)


def _server_hello(body: bytes) -> tuple[int, int, bytes] | None:
    """(version, cipher suite, random) of a ServerHello body (RFC 8446 §4.1.3), or None."""
    try:
        version = (body[0] << 8) | body[1]
        random = body[2:34]
        p = 35 + body[34]  # legacy_session_id_echo
        suite = (body[p] << 8) | body[p + 1]
        p += 3  # cipher_suite, legacy_compression_method
        if p + 2 <= len(body):
            end = min(len(body), p + 2 + ((body[p] << 8) | body[p + 1]))
            p += 2
            while p + 4 <= end:
                kind = (body[p] << 8) | body[p + 1]
                size = (body[p + 2] << 8) | body[p + 3]
                if kind == _SUPPORTED_VERSIONS and size == 2:
                    version = (body[p + 4] << 8) | body[p + 5]
                p += 4 + size
        return version, suite, random
    except IndexError:
        return None
