"""The serial link to a Cyton (through its USB dongle): open, handshake, commands, raw reads.

Every reply the firmware sends to a command ends in `$$$`. A dongle whose board is off answers
any command with "Failure: Communications timeout - Device failed to poll Host$$$".
"""

from __future__ import annotations

import os
import time

import serial

from appliance.errors import FrontEndError
from appliance.frontend.cyton.protocol import CODE_BY_GAIN

BOARD_OFF_MARK = "Device failed to poll Host"
REPLY_END = "$$$"


class CytonLink:
    """One open serial port to a Cyton dongle. Raises FrontEndError naming the port and reply."""

    def __init__(self, port: str, reply_timeout_s: float = 3.0) -> None:
        self.port = port
        self.reply_timeout_s = reply_timeout_s
        try:
            self.serial = serial.Serial(
                port, baudrate=115200, bytesize=8, parity="N", stopbits=1, timeout=0.05
            )
        except (serial.SerialException, OSError) as e:
            # pyserial's text repeats the port twice: the errno's reason is enough
            why = os.strerror(e.errno) if isinstance(e.errno, int) else str(e)
            raise FrontEndError(
                f"Cyton port {port!r}: cannot open it ({why}). Is the dongle plugged in and is "
                "frontend.port right (e.g. /dev/ttyUSB0 or /dev/serial/by-id/...)?"
            ) from e
        self.firmware = ""
        self.low_latency = self._low_latency()

    def _low_latency(self) -> bool:
        """Ask the USB-serial driver to pass bytes on at once: ftdi_sio then sets the FT231X
        latency timer to 1 ms instead of 16 ms (BrainFlow does the same on Windows). A pty or a
        driver without the flag refuses; that only adds latency."""
        try:
            self.serial.set_low_latency_mode(True)
        except (ValueError, OSError, AttributeError):
            return False
        return True

    def close(self) -> None:
        try:
            self.serial.close()
        except (serial.SerialException, OSError):
            pass  # the port may already be gone (unplugged)

    # ---- commands --------------------------------------------------------------------------
    def send(self, cmd: str) -> None:
        self.serial.write(cmd.encode("ascii"))

    def command(self, cmd: str, timeout_s: float | None = None) -> str:
        """Send `cmd` and return its reply text up to and including `$$$`."""
        self.send(cmd)
        return self.read_reply(cmd, timeout_s)

    def read_reply(self, cmd: str, timeout_s: float | None = None) -> str:
        deadline = time.monotonic() + (self.reply_timeout_s if timeout_s is None else timeout_s)
        got = bytearray()
        while time.monotonic() < deadline:
            got += self.serial.read(max(1, self.serial.in_waiting))
            if got.endswith(REPLY_END.encode()):
                break
        text = got.decode("latin-1")
        if BOARD_OFF_MARK in text:
            raise FrontEndError(
                f"Cyton on {self.port!r}: the dongle answered {cmd!r} with {text.strip()!r}: "
                "the board is off or out of range. Switch the Cyton on (PC position) and check "
                "its battery."
            )
        if not text:
            raise FrontEndError(
                f"Cyton on {self.port!r}: no reply to {cmd!r} within {self.reply_timeout_s} s. "
                "Is this an OpenBCI dongle, and is its switch on GPIO_6 (not RESET)?"
            )
        if not text.endswith(REPLY_END):
            raise FrontEndError(
                f"Cyton on {self.port!r}: reply to {cmd!r} did not end in '$$$' within "
                f"{self.reply_timeout_s} s; got {text[-120:]!r}"
            )
        return text

    def expect_success(self, cmd: str) -> str:
        text = self.command(cmd)
        if "Success" not in text:
            raise FrontEndError(f"Cyton on {self.port!r}: command {cmd!r} failed: {text.strip()!r}")
        return text

    # ---- session ---------------------------------------------------------------------------
    def handshake(self) -> str:
        """Stop any stream left running, soft-reset (`v`) and return the boot text."""
        self.send("s")
        time.sleep(0.05)
        self.serial.reset_input_buffer()
        text = self.command("v")
        if "OpenBCI" not in text:
            raise FrontEndError(
                f"Cyton on {self.port!r}: the reply to 'v' is not an OpenBCI boot text: "
                f"{text.strip()[-120:]!r}"
            )
        for line in text.splitlines():
            if line.startswith("Firmware:"):
                self.firmware = line.split(":", 1)[1].strip()
        return text

    def set_channel(
        self, channel: int, gain: int, power_down: bool = False, srb2: bool = True
    ) -> None:
        """`x C P G I B S2 S1 X`: normal electrode input, in bias, SRB2 as reference."""
        if gain not in CODE_BY_GAIN:
            raise FrontEndError(f"Cyton gain {gain} is not one of {sorted(CODE_BY_GAIN)}")
        p = "1" if power_down else "0"
        bias, s2 = ("0", "0") if power_down else ("1", "1" if srb2 else "0")
        self.expect_success(f"x{channel}{p}{CODE_BY_GAIN[gain]}0{bias}{s2}0X")

    def board_mode_digital(self) -> None:
        """`/3`: D11, D12, D13, D17, D18 travel in every packet (the stimulus sync inputs)."""
        text = self.command("/3")
        if "Success" not in text:
            raise FrontEndError(
                f"Cyton on {self.port!r}: board mode digital ('/3') refused: {text.strip()!r}. "
                f"Firmware {self.firmware or 'unknown'}; board modes need firmware v3."
            )

    def start(self) -> None:
        self.serial.reset_input_buffer()
        self.send("b")

    def stop(self) -> None:
        self.send("s")

    def read(self, timeout_s: float) -> bytes:
        """Whatever arrived, waiting at most timeout_s for the first byte. Raises
        serial.SerialException/OSError when the port has gone (e.g. USB unplug)."""
        if self.serial.timeout != timeout_s:  # pyserial rewrites termios on every change
            self.serial.timeout = timeout_s
        waiting = self.serial.in_waiting
        return self.serial.read(waiting if waiting else 1) + (
            self.serial.read(self.serial.in_waiting) if not waiting else b""
        )
