"""The SQLite writer in a process of its own: batches pickled over a socket pair to a child that
applies and commits each one (sqlite_writer.py), its answer sent back only after the commit.

Why: the writer's Python work (the rules, SQLAlchemy, the driver rows) then runs beside the
event loop, not under its GIL (bench/). The guarantees stay: a batch is answered only once its
transaction is committed; the child ends when the gateway's end of the socket closes, even
after a kill -9 of the gateway (it finishes the commit it is in, as the thread would).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copyreg
import dataclasses
import functools
import io
import logging
import operator
import pickle
import select
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import IO, Any, cast

from sqlalchemy.engine import URL, make_url

from gateway import runtime
from gateway.core.model import Intake, Recipient, ReplyState, Request, RuleSettings
from gateway.errors import ProcessingError
from gateway.store.batch import Answered, Written

log = logging.getLogger("mail2sms.writer")

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_SIZE = 8  # each frame: its length on 8 bytes (little-endian), then one pickle
# The gateway's send buffer: a batch's frame (~80 KB an email of a 500-line CSV) goes into
# the socket at once, not as the event loop finds room for its rest while the child waits for
# its end (the child's read of a batch of such emails: 0.7 → 0.2 ms an email, bench/). The
# kernel may cap it (Linux: net.core.wmem_max); a refusal leaves its default.
_SEND_BUFFER = 4 * 1024 * 1024


def _frame(value: Any) -> bytes:
    buffer = io.BytesIO()
    buffer.write(bytes(_SIZE))
    _Pickler(buffer, protocol=_PROTOCOL).dump(value)
    data = buffer.getbuffer()
    data[:_SIZE] = (len(data) - _SIZE).to_bytes(_SIZE, "little")
    return bytes(data)


class Pickled:
    """An item pickled ahead, where it was read (`ProcessWriter.prepare`): a batch's frame then
    only copies its bytes, and the child unpickles it as the item itself."""

    __slots__ = ("data",)

    def __init__(self, item: Intake) -> None:
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=_PROTOCOL).dump(item)
        self.data = buffer.getvalue()


def _reduce_pickled(pickled: Pickled) -> Any:
    return pickle.loads, (pickled.data,)


class _Pickler(pickle.Pickler):
    """Dataclasses pickled as a call of their class with their fields in order: the default
    way asks dataclasses.fields() for each object (500 recipients, 500 results a request).
    Their reducers are found by type in the dispatch table, so that the tuples, lists and
    strings around them never reach Python code."""

    def __init__(self, file: IO[bytes], protocol: int) -> None:
        super().__init__(file, protocol)
        self.dispatch_table = _REDUCERS


class _Reducers(dict[type, Callable[[Any], Any]]):
    """type → its reducer, made on first sight: a dataclass's own; for any other type what the
    pickler does without a table of its own (copyreg's reducer, else __reduce_ex__); a class
    (an enum's, say) is missing (KeyError), so that the pickler saves it by reference."""

    def __missing__(self, kind: type) -> Callable[[Any], Any]:
        if issubclass(kind, type):
            raise KeyError(kind)
        reducer: Callable[[Any], Any] | None = copyreg.dispatch_table.get(kind)
        if reducer is None and dataclasses.is_dataclass(kind):
            names = [f.name for f in dataclasses.fields(kind)]
            if len(names) == 1:
                reducer = functools.partial(_reduce_one, kind, operator.attrgetter(names[0]))
            else:
                reducer = functools.partial(_reduce, kind, operator.attrgetter(*names))
        elif reducer is None:
            reducer = operator.methodcaller("__reduce_ex__", _PROTOCOL)
        self[kind] = reducer
        return reducer


def _reduce_request(request: Request) -> Any:
    """A request with its recipients as three columns: rebuilding 500 of them from columns
    costs the writer process a third of unpickling them one object at a time (~0.2 against
    ~0.55 ms a request of 500 numbers, bench/)."""
    recipients = request.recipients
    columns = (
        tuple(r.tel for r in recipients),
        tuple(r.text for r in recipients),
        tuple(r.tracker for r in recipients),
    )
    return _request, (_REQUEST_OTHERS(request), columns)


def _request(others: tuple[Any, ...], columns: tuple[tuple[Any, ...], ...]) -> Request:
    recipients = tuple(map(Recipient, *columns))
    return Request(**dict(zip(_REQUEST_NAMES, others, strict=True)), recipients=recipients)


_REQUEST_NAMES = tuple(f.name for f in dataclasses.fields(Request) if f.name != "recipients")
_REQUEST_OTHERS = operator.attrgetter(*_REQUEST_NAMES)


def _reduce(kind: type, fields: Callable[[Any], tuple[Any, ...]], obj: Any) -> Any:
    return kind, fields(obj)


def _reduce_one(kind: type, field: Callable[[Any], Any], obj: Any) -> Any:
    return kind, (field(obj),)


_REDUCERS = _Reducers({Request: _reduce_request, Pickled: _reduce_pickled})


class _Channel(asyncio.Protocol):
    """The gateway's end of one child's socket. Batches are written to it as they come and
    the child answers them in that order: each answer, once whole, goes to the oldest batch's
    `answered` in the same call of the event loop that read it (no task's turn to wait for)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._waiting: collections.deque[Callable[[Any], None]] = collections.deque()
        self._buffer = bytearray()
        self.ended: Exception | None = None  # why the socket ended, once it did

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A socket's transport (uvloop's are not asyncio's classes: no isinstance check).
        self.transport = cast(asyncio.Transport, transport)

    def send(self, frame: bytes, answered: Callable[[Any], None]) -> None:
        """Write a batch's frame; `answered` gets the child's answer (status, value), or the
        exception that ended the socket first."""
        if self.ended is not None or self.transport is None or self.transport.is_closing():
            answered(self.ended or EOFError("the writer process's socket is closed"))
            return
        self._waiting.append(answered)
        self.transport.write(frame)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _SIZE:
            end = _SIZE + int.from_bytes(buffer[:_SIZE], "little")
            if len(buffer) < end:
                return
            answer = pickle.loads(buffer[_SIZE:end])
            del buffer[:end]
            _tell(self._waiting.popleft(), answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = exc or EOFError("the writer process closed its socket")
        while self._waiting:
            _tell(self._waiting.popleft(), self.ended)


def _tell(answered: Callable[[Any], None], answer: Any) -> None:
    """A batch's answer given; a failure of the receiver is logged, not the socket's end."""
    try:
        answered(answer)
    except Exception:
        log.exception("a batch's answer could not be handled")


class ProcessWriter:
    """The writer's interface (writer.py) in front of the child. Up to `depth` batches at once:
    the next batch waits in the child's socket while it commits one, so that it goes from a
    commit straight to the next batch (the child still applies them one after the other)."""

    # Measured against one at a time (ad hoc, ten alternating rounds of 3 s each, 2026-12-02):
    # emails a second, 500-line CSVs +9 %, 500 numbers +5 %, 1 recipient +7 %.
    depth = 2

    def __init__(self, url: URL, rules: RuleSettings, reply_state: ReplyState) -> None:
        # MappingProxyType does not pickle: the rules travel with a plain dict.
        portable = dataclasses.replace(rules, number_plan=dict(rules.number_plan))
        self._init = _frame((url.render_as_string(hide_password=False), portable, reply_state))
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._channel: _Channel | None = None
        self._opening = asyncio.Lock()  # two batches at once find no channel: one opens it
        self._spawn()

    def _spawn(self) -> None:
        # Started at once: the child imports while the gateway finishes starting.
        ours, theirs = socket.socketpair()
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "gateway.store.writer_process", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        with contextlib.suppress(OSError):
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        ours.sendall(self._init)
        self._socket = ours
        self._channel = None

    def prepare(self, item: Intake) -> Pickled:
        """The item pickled now, by the thread that read it: the batch's frame, made on the
        event loop between one commit and the next batch, then only copies its bytes (a
        batch of seven 500-line CSV emails: ~2.7 ms the child waited, bench/)."""
        return Pickled(item)

    @property
    def pid(self) -> int | None:
        """The child's process id, None between a death and the next batch."""
        return self._process.pid if self._process is not None else None

    async def apply(self, batch: Sequence[Intake | Pickled], now: datetime) -> list[Written]:
        channel = await self._open()
        future: asyncio.Future[list[Written]] = asyncio.get_running_loop().create_future()

        def answered(outcome: list[Written] | Exception) -> None:
            if future.done():  # cancelled: the child still commits it, nobody waits
                return
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        self._send(channel, batch, now, answered)
        return await future

    def start(self, batch: Sequence[Intake | Pickled], now: datetime, answered: Answered) -> bool:
        """The batch written to the child now, when its socket is open (else `apply` opens it)."""
        if self._channel is None or self._channel.ended is not None:
            return False
        self._send(self._channel, batch, now, answered)
        return True

    def _send(
        self,
        channel: _Channel,
        batch: Sequence[Intake | Pickled],
        now: datetime,
        answered: Answered,
    ) -> None:
        def child_answered(answer: Any) -> None:
            if isinstance(answer, Exception):
                # Whether the child committed that batch is unknown: its emails get 451 (a
                # retry is then a duplicate, exactly once); the next batch starts a new child.
                self._drop(channel)
                error = ProcessingError("the writer process ended")
                error.__cause__ = answer
                answered(error)
                return
            status, value = answer
            if status != "ok":
                answered(ProcessingError(f"the batch failed in the writer process:\n{value}"))
                return
            answered(value)

        channel.send(_frame((list(batch), now)), child_answered)

    async def _open(self) -> _Channel:
        async with self._opening:
            if self._socket is None:
                self._spawn()
            assert self._socket is not None
            if self._channel is None:
                loop = asyncio.get_running_loop()
                _, self._channel = await loop.create_unix_connection(_Channel, sock=self._socket)
            return self._channel

    def _drop(self, channel: _Channel) -> None:
        """The child of this channel stopped, unless it is already gone: a batch that was in
        the same child leaves alone the child that a retry may have started since."""
        if self._channel is channel:
            self._stop(kill=True)

    def close(self) -> None:
        self._stop(kill=False)

    def _stop(self, *, kill: bool) -> None:
        if self._socket is not None:
            # The child sees its end of input now: a transport's close would only be done
            # by the event loop, which the wait below holds up.
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        if self._channel is not None and self._channel.transport is not None:
            self._channel.transport.close()
        elif self._socket is not None:
            self._socket.close()
        self._socket, self._channel = None, None
        process, self._process = self._process, None
        if process is None:
            return
        if kill:
            process.kill()
        try:
            process.wait(10)  # the end of the socket ends it, once its commit is done
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(_SIZE)
    if len(header) < _SIZE:
        return None
    return pickle.loads(stream.read(int.from_bytes(header, "little")))


def _gone(hang_up: select.poll) -> bool:
    """Whether the gateway's end of the socket is closed (the gateway died, a kill -9): the
    batches it sent before still wait in the socket, but nobody would answer their clients,
    who send them again: they are not applied."""
    return bool(hang_up.poll(0))


def main(fd: int) -> None:
    """The child: batches in, answers out, until the gateway's end closes."""
    # Ctrl-C reaches the whole process group: the gateway drains, then closes the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from gateway.store.sqlite_writer import SqliteWriter

    with socket.socket(fileno=fd) as sock, sock.makefile("rb") as stream:
        init = _read(stream)
        if init is None:
            return
        url, rules, reply_state = init
        writer = SqliteWriter(make_url(url), rules, reply_state)
        runtime.settle()
        hang_up = select.poll()
        hang_up.register(sock, select.POLLRDHUP)
        try:
            while (request := _read(stream)) is not None:
                if _gone(hang_up):
                    return
                batch, now = request
                try:
                    answer: tuple[str, Any] = ("ok", writer.apply_here(batch, now))
                except Exception:
                    answer = ("error", traceback.format_exc())
                try:
                    sock.sendall(_frame(answer))
                except OSError:
                    return  # the gateway is gone; what was committed stays committed
                if writer.catching_up_due():  # once the batch is answered (by_number.py)
                    writer.catch_up()
        finally:
            writer.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
