"""An OpenBCI Cyton (board + USB dongle) on a pseudo-terminal.

Serves the firmware v3 command set with its text replies (each ending in `$$$`) and streams
33-byte packets at 250 Hz from a `Source` (see sources.py). Complete enough for BrainFlow's
CYTON_BOARD and for our driver; clients open `emulator.link` (a stable symlink) or
`emulator.path` (the pty itself).

Stand-in limits (what it does not emulate): baud rate and transmit time (a pty has none), radio
packet loss (use `drop_packets`), daisy boards, WiFi sample rates, lead-off detection (settings
are accepted and stored only), accelerometer motion (a constant 1 g on z), analog pins (zero).

Faults for tests: `board_on=False` (the dongle answers every command with the
"Communications timeout" failure), `inject(bytes)` (garbage between packets), `drop_packets(n)`
(lost radio packets: sample numbers skip), `unplug()` / `replug()` (the pty closes, the symlink
disappears, then points at a new pty).
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import tempfile
import termios
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

import numpy as np

from appliance.errors import CommandError
from appliance.frontend.cyton import protocol as proto
from appliance.frontend.cyton.sources import Source

BOARD_OFF_REPLY = b"Failure: Communications timeout - Device failed to poll Host$$$"
BOOT_TEXT = (
    b"OpenBCI V3 8-16 channel\nOn Board ADS1299 Device ID: 0x3E\n"
    b"LIS3DH Device ID: 0x33\nFirmware: v3.1.2\n$$$"
)
DEFAULT_CHANNEL = "060110"  # power on, gain 24, normal input, bias, SRB2 on, SRB1 off
BOARD_MODES = {"0": "default", "1": "debug", "2": "analog", "3": "digital", "4": "marker"}
RATES_HZ = {"0": 16000, "1": 8000, "2": 4000, "3": 2000, "4": 1000, "5": 500, "6": 250}
CHANNEL_OFF = "12345678"
CHANNEL_ON = "!@#$%^&*"
TEST_SIGNALS = "0-=p[]"
_FAST_QUEUE_BYTES = 2048  # in fast mode, keep the client's unread bytes below this
_MAX_BACKLOG_BYTES = 250 * proto.PACKET_BYTES  # realtime: ~1 s buffered, then packets are lost


def _is_pty_link(path: str) -> bool:
    """A symlink to a pseudo-terminal: what this emulator makes (a stale one after a crash)."""
    return os.path.islink(path) and os.readlink(path).startswith("/dev/pts/")


def _refuse_foreign(path: str) -> None:
    if os.path.lexists(path) and not _is_pty_link(path):
        what = "a symlink to " + repr(os.readlink(path)) if os.path.islink(path) else (
            "a directory" if os.path.isdir(path) else "a file")
        raise CommandError(f"--link {path!r} is {what}, not a pty link this emulator made; "
                           "choose another path (nothing was replaced).")


class CytonEmulator:
    """A Cyton on a pty. `start()`, then clients open `link` (or `path`); `close()` when done.

    source      where samples come from (None: streams zeros)
    link        symlink path that always points at the current pty (a temp path if None)
    realtime    pace packets at 250 Hz; False streams as fast as the client reads (tests)
    board_on    False: the dongle is plugged in but the board is off
    """

    def __init__(
        self,
        source: Source | None = None,
        link: str | Path | None = None,
        realtime: bool = True,
        board_on: bool = True,
    ) -> None:
        self.source = source
        self.realtime = realtime
        self.board_on = board_on
        self._own_dir: str | None = None
        if link is None:
            self._own_dir = tempfile.mkdtemp(prefix="cyton-")
            link = os.path.join(self._own_dir, "ttyCYTON")
        self.link = str(link)
        _refuse_foreign(self.link)  # before anything starts: never replace a user's file
        self.path = ""
        self.commands: list[str] = []  # every command received, in order (for tests and logs)
        self.packets_sent = 0
        self.packets_dropped = 0
        self.source_exhausted = threading.Event()
        self.failure: Exception | None = None
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self._out = bytearray()
        self._inbuf = b""
        self._drop = 0
        self._drop_at: set[int] = set()
        self._garbage_at: dict[int, bytes] = {}
        self._requests: list[tuple[Callable[[], None], threading.Event]] = []
        self._wake_r, self._wake_w = os.pipe()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reset_board()

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> CytonEmulator:
        self._open_pty()
        self._thread = threading.Thread(target=self._run, name="cyton-emulator", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        if self._own_dir is not None:
            os.rmdir(self._own_dir)
        if self.failure is not None:
            raise RuntimeError(
                f"the Cyton emulator thread failed: {self.failure!r}"
            ) from self.failure

    def __enter__(self) -> CytonEmulator:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- faults ----------------------------------------------------------------------------
    def unplug(self) -> None:
        """USB unplug: the pty closes under the client and the symlink disappears."""
        self._in_thread(self._close_pty)

    def replug(self) -> None:
        """USB replug: a new pty (new path); the symlink points at it again. Not streaming."""
        self._in_thread(self._replug)

    def inject(self, data: bytes, after_packet: int | None = None) -> None:
        """Put raw bytes on the line: now (between packets), or right after packet number
        `after_packet` (counted from 0 at `b`, including dropped ones)."""
        with self._lock:
            if after_packet is None:
                self._out += data
            else:
                self._garbage_at[after_packet] = self._garbage_at.get(after_packet, b"") + data

    def drop_packets(self, n: int, at_packet: int | None = None) -> None:
        """Lose n packets on the radio link (their sample numbers are skipped): the next n, or
        those from packet number `at_packet` on (counted from 0 at `b`)."""
        with self._lock:
            if at_packet is None:
                self._drop += n
            else:
                self._drop_at.update(range(at_packet, at_packet + n))

    def power(self, on: bool) -> None:
        """Switch the board on or off (the dongle stays plugged in). Off stops the stream."""
        with self._lock:
            self.board_on = on
            if not on:
                self._reset_board()

    @property
    def streaming(self) -> bool:
        return self._streaming

    # ---- board state -----------------------------------------------------------------------
    def _reset_board(self) -> None:
        self._streaming = False
        self.channels = [DEFAULT_CHANNEL] * proto.N_CHANNELS
        self.leadoff = ["000"] * proto.N_CHANNELS
        self.board_mode = "default"
        self._sample_number = 0
        self._t_stream = 0.0
        self._marker = 0

    def gains(self) -> np.ndarray:
        return np.array([proto.GAIN_BY_CODE[int(c[1])] for c in self.channels])

    # ---- pty -------------------------------------------------------------------------------
    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        tmp = self.link + ".new"
        if os.path.lexists(tmp):
            _refuse_foreign(tmp)
            os.unlink(tmp)
        os.symlink(self.path, tmp)
        try:
            _refuse_foreign(self.link)  # again: a replug may find a file put there meanwhile
        except CommandError:
            os.unlink(tmp)
            raise
        os.replace(tmp, self.link)

    def _close_pty(self) -> None:
        # only our own link: never a file or link someone put there meanwhile
        if os.path.islink(self.link) and os.readlink(self.link) == self.path:
            os.unlink(self.link)
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        with self._lock:
            self._out.clear()
        self._inbuf = b""

    def _replug(self) -> None:
        if self._master is None:
            self._reset_board()
            self._open_pty()

    def _in_thread(self, fn: Callable[[], None]) -> None:
        done = threading.Event()
        with self._lock:
            self._requests.append((fn, done))
        os.write(self._wake_w, b"x")
        if not done.wait(timeout=5.0):
            raise TimeoutError("Cyton emulator thread did not respond")

    # ---- main loop -------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # surfaced by close(): a dead emulator must not look like silence
            self.failure = e
            raise

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                requests, self._requests = self._requests, []
            for fn, done in requests:
                fn()
                done.set()
            master = self._master
            rlist = [self._wake_r] + ([master] if master is not None else [])
            wlist = [master] if master is not None and self._out else []
            r, w, _ = select.select(rlist, wlist, [], self._wait_s())
            if self._wake_r in r:
                os.read(self._wake_r, 64)
            if master is None:
                continue
            if master in r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    data = b""
                if data:
                    self._on_bytes(data)
            if self._streaming:
                self._produce()
            self._flush_out()

    def _wait_s(self) -> float:
        if self._master is None or not self._streaming or self.source_exhausted.is_set():
            return 0.1
        if not self.realtime:
            return 0.0 if self._client_queue() < _FAST_QUEUE_BYTES else 0.002
        due = self._t_stream + (self.packets_sent + self.packets_dropped + 1) / 250.0
        return max(0.0, min(0.1, due - time.monotonic()))

    def _client_queue(self) -> int:
        """Bytes written to the pty the client has not read yet (plus our own backlog)."""
        buf = fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0")
        return struct.unpack("i", buf)[0] + len(self._out)

    def _flush_out(self) -> None:
        if self._master is None:
            return
        with self._lock:
            if not self._out:
                return
            try:
                n = os.write(self._master, self._out)
            except BlockingIOError:
                return
            except OSError:
                n = len(self._out)  # nobody can receive it; a dongle would drop it too
            del self._out[:n]

    def _produce(self) -> None:
        if self.realtime:
            due = int((time.monotonic() - self._t_stream) * 250.0)
            n = min(due - self.packets_sent - self.packets_dropped, 250)
        else:
            room = _FAST_QUEUE_BYTES - self._client_queue()
            n = max(0, room // proto.PACKET_BYTES)
        if n <= 0:
            return
        data = self._packets(n)
        with self._lock:
            if len(self._out) > _MAX_BACKLOG_BYTES:  # client not reading: the link loses them
                self.packets_dropped += len(data) // proto.PACKET_BYTES
                return
            self._out += data

    def _packets(self, n: int) -> bytes:
        gains = self.gains()
        if self.source is None:
            counts, trigger = np.zeros((n, proto.N_CHANNELS), np.int32), np.zeros(n, np.uint16)
        else:
            got = self.source.take(n, gains)
            if got is None:
                self.source_exhausted.set()
                return b""
            counts, trigger = got
            n = counts.shape[0]
        counts = counts.copy()
        for i, ch in enumerate(self.channels):
            if ch[0] == "1" or ch[2] not in "05":
                counts[:, i] = 0  # powered down or shorted/other internal inputs
            elif ch[2] == "5":  # internal test signal: 1.875 mV square at ~1 Hz
                t = (self._sample_number + np.arange(n)) / 250.0
                amp = 1875.0 / proto.uv_per_count(int(gains[i]))
                counts[:, i] = np.where((t % 1.024) < 0.512, amp, -amp).astype(np.int32)
        seq = self._sample_number + np.arange(n)
        aux, footer = self._aux(seq, trigger)
        self._sample_number += n
        with self._lock:
            keep = np.ones(n, bool)
            keep[: self._drop] = False
            self._drop -= min(self._drop, n)
            keep &= ~np.isin(seq, list(self._drop_at))
            self._drop_at.difference_update(range(int(seq[0]), int(seq[0]) + n))
            due = [k for k in self._garbage_at if seq[0] <= k < seq[0] + n]
            garbage = {k: self._garbage_at.pop(k) for k in due}
        self.packets_dropped += int(n - keep.sum())
        self.packets_sent += int(keep.sum())
        blob = proto.encode(seq[keep], counts[keep], aux[keep], np.broadcast_to(footer, n)[keep])
        for k in sorted(garbage, reverse=True):  # after packet k, if k was sent
            if keep[k - seq[0]]:
                cut = int(keep[: k - seq[0] + 1].sum()) * proto.PACKET_BYTES
                blob = blob[:cut] + garbage[k] + blob[cut:]
        return blob

    def _aux(self, seq: np.ndarray, trigger: np.ndarray) -> tuple[np.ndarray, int]:
        n = seq.shape[0]
        if self.board_mode == "digital":
            return proto.digital_aux(trigger), proto.FOOTER_RAW_AUX
        aux = np.zeros((n, 6), np.uint8)
        if self.board_mode == "marker":
            if self._marker and n:
                aux[0, 1] = self._marker
                self._marker = 0
            return aux, proto.FOOTER_RAW_AUX
        if self.board_mode == "analog":
            return aux, proto.FOOTER_RAW_AUX
        aux[seq % 10 == 0, 4:6] = (0x1F, 0x40)  # accel z = 8000 -> 1 g, sent at 25 Hz
        return aux, proto.FOOTER_ACCEL

    # ---- commands --------------------------------------------------------------------------
    def _on_bytes(self, data: bytes) -> None:
        buf = self._inbuf + data
        i = 0
        while i < len(buf):
            c = chr(buf[i])
            need = {"x": 9, "z": 5, "/": 2, "~": 2, "`": 2}.get(c, 1)
            if i + need > len(buf):
                break
            self._command(buf[i : i + need].decode("latin-1"))
            i += need
        self._inbuf = buf[i:]

    def _reply(self, text: str | bytes) -> None:
        if self._streaming:
            return  # the firmware stays quiet while streaming so packets are not corrupted
        with self._lock:
            self._out += text.encode() if isinstance(text, str) else text

    def _command(self, cmd: str) -> None:
        self.commands.append(cmd)
        if not self.board_on:
            with self._lock:
                self._out += BOARD_OFF_REPLY
            return
        c = cmd[0]
        if c == "v":
            self._reset_board()
            self._reply(BOOT_TEXT)
        elif c == "b":
            if not self._streaming:
                self._streaming = True
                self._sample_number = 0
                self.packets_sent = self.packets_dropped = 0
                self._t_stream = time.monotonic()
        elif c == "s":
            self._streaming = False
        elif c == "d":
            self.channels = [DEFAULT_CHANNEL] * proto.N_CHANNELS
            self._reply("updating channel settings to default$$$")
        elif c == "D":
            self._reply(DEFAULT_CHANNEL + "$$$")
        elif c == "x":
            self._reply(self._channel_settings(cmd))
        elif c == "z":
            self._reply(self._leadoff_settings(cmd))
        elif c == "/":
            self._reply(self._board_mode(cmd[1]))
        elif c == "~":
            self._reply(self._rate(cmd[1]))
        elif c == "?":
            self._reply(self._register_dump())
        elif c == "`":
            self._marker = ord(cmd[1])
        elif c in CHANNEL_OFF:
            i = CHANNEL_OFF.index(c)
            self.channels[i] = "1" + self.channels[i][1:]
        elif c in CHANNEL_ON:
            i = CHANNEL_ON.index(c)
            self.channels[i] = "0" + self.channels[i][1:]
        elif c in TEST_SIGNALS:
            mux = "1" if c == "0" else "5"
            self.channels = [ch[:2] + mux + ch[3:] for ch in self.channels]
            self._reply("Success: Configured internal test signal.$$$")
        elif c == "c":
            self._reply("No daisy to remove$$$")
        elif c == "C":
            self._reply("no daisy to attach!8$$$")
        # anything else: the firmware ignores it

    def _channel_settings(self, cmd: str) -> str:
        ch, body, end = cmd[1], cmd[2:8], cmd[8]
        if end != "X":
            return "Failure: too many or too few characters in channel settings$$$"
        if ch not in "12345678":
            return f"Failure: Err: invalid channel {ch!r}$$$"
        power, gain, mux, bias, srb2, srb1 = body
        if (
            power not in "01"
            or gain not in "0123456"
            or mux not in "01234567"
            or bias not in "01"
            or srb2 not in "01"
            or srb1 not in "01"
        ):
            return f"Failure: Err: invalid channel setting {body!r} for channel {ch}$$$"
        self.channels[int(ch) - 1] = body
        return f"Success: Channel set for {ch}$$$"

    def _leadoff_settings(self, cmd: str) -> str:
        ch, p, n, end = cmd[1], cmd[2], cmd[3], cmd[4]
        if end != "Z" or ch not in "12345678" or p not in "01" or n not in "01":
            return f"Failure: Err: invalid lead off setting {cmd!r}$$$"
        self.leadoff[int(ch) - 1] = p + n
        return f"Success: Lead off set for {ch}$$$"

    def _board_mode(self, m: str) -> str:
        if m == "/":
            return f"{self.board_mode}$$$"
        if m not in BOARD_MODES:
            return f"Failure: unknown board mode {m!r}$$$"
        self.board_mode = BOARD_MODES[m]
        return f"Success: {self.board_mode}$$$"

    def _rate(self, r: str) -> str:
        if r == "~":
            return "Sample rate is 250Hz$$$"
        if r not in RATES_HZ:
            return f"Failure: unknown sample rate code {r!r}$$$"
        if RATES_HZ[r] != 250:
            return f"Failure: {RATES_HZ[r]}Hz needs the WiFi shield; the dongle streams 250Hz$$$"
        return "Success: Sample rate is 250Hz$$$"

    def _register_dump(self) -> str:
        lines = ["", "Board ADS Registers", "ADS_ID, 00, 3E, 0, 0, 1, 1, 1, 1, 1, 0"]
        regs = {"CONFIG1": 0x96, "CONFIG2": 0xC0, "CONFIG3": 0xEC, "LOFF": 0x02}
        for i, (name, val) in enumerate(regs.items(), start=1):
            lines.append(f"{name}, {i:02X}, {val:02X}, " + ", ".join(f"{val:08b}"))
        for i, ch in enumerate(self.channels):
            val = int(ch[0]) << 7 | int(ch[1]) << 4 | int(ch[4]) << 3 | int(ch[2])
            lines.append(f"CH{i + 1}SET, {5 + i:02X}, {val:02X}, " + ", ".join(f"{val:08b}"))
        return "\n".join(lines) + "\n$$$"
