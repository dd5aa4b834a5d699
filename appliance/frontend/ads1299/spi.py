"""The two hardware seams of the ADS1299: an SPI device shaped like spidev, and the DRDY line.

Real implementations import their libraries lazily, so this module imports anywhere; they only
open on a Raspberry Pi (spidev; libgpiod v2 `gpiod` from PyPI, checked by `check_gpiod`).
Stand-ins with the same surface live in `emulator.py`.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from appliance.errors import FrontEndError

SPI_MODE = 1  # ADS1299: CPOL=0, CPHA=1


class SpiDevice(Protocol):
    """The spidev.SpiDev surface we use. One call = one chip-select-low transaction."""

    mode: int
    max_speed_hz: int

    def xfer2(self, data: list[int], speed_hz: int = 0) -> list[int]: ...  # 0: max_speed_hz

    def readbytes(self, n: int) -> list[int]: ...

    def close(self) -> None: ...


class Drdy(Protocol):
    """The DRDY line. `wait` returns True on a falling edge (a conversion is ready), False when
    none came within `timeout_s`. `sequence` is the sequence number of the latest edge seen:
    it grows by one per conversion, so a jump of k means k - 1 conversions were not read.
    `timestamp_ns` is when that edge fell, in the clock of `clock_ns()` (CLOCK_MONOTONIC on a Pi;
    the kernel's timestamp with libgpiod v2, the wake-up time with RPi.GPIO)."""

    sequence: int
    timestamp_ns: int

    def clock_ns(self) -> int: ...

    def wait(self, timeout_s: float) -> bool: ...

    def close(self) -> None: ...


class SpidevSpi:
    """spidev on /dev/spidev<bus>.<device>, SPI mode 1, MSB first."""

    def __init__(self, bus: int = 0, device: int = 0, speed_hz: int = 2_000_000) -> None:
        self.path = f"/dev/spidev{bus}.{device}"
        try:
            import spidev  # type: ignore[import-not-found]
        except ImportError as e:
            raise FrontEndError(
                f"ADS1299 on {self.path}: the spidev module is not installed "
                "(it is a Raspberry Pi dependency: pip install spidev)."
            ) from e
        self._dev = spidev.SpiDev()
        try:
            self._dev.open(bus, device)
        except OSError as e:
            raise FrontEndError(
                f"ADS1299 on {self.path}: cannot open it ({e.strerror}); enable SPI with "
                "`dtparam=spi=on` in /boot/firmware/config.txt and check the user is in group spi."
            ) from e
        self._dev.mode = SPI_MODE
        self._dev.max_speed_hz = speed_hz
        self._dev.bits_per_word = 8
        self._closed = False

    @property
    def mode(self) -> int:
        return int(self._dev.mode)

    @mode.setter
    def mode(self, value: int) -> None:
        self._dev.mode = value

    @property
    def max_speed_hz(self) -> int:
        return int(self._dev.max_speed_hz)

    @max_speed_hz.setter
    def max_speed_hz(self, value: int) -> None:
        self._dev.max_speed_hz = value

    def xfer2(self, data: list[int], speed_hz: int = 0) -> list[int]:
        """One transfer; speed_hz (0: max_speed_hz) for this transfer only (the data reads'
        frontend.spi_read_speed_hz; spidev sets it per transfer)."""
        return list(self._dev.xfer2(list(data), speed_hz) if speed_hz else
                    self._dev.xfer2(list(data)))

    def readbytes(self, n: int) -> list[int]:
        return list(self._dev.readbytes(n))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._dev.close()


GPIOD_PACKAGE = "gpiod>=2"  # PyPI's libgpiod v2 binding (Debian bookworm's python3-libgpiod is 1.6)


def check_gpiod() -> Any:
    """The libgpiod v2 module, or a FrontEndError naming the package to install."""
    try:
        import gpiod  # type: ignore[import-not-found]
    except ImportError as e:
        raise FrontEndError(
            f"ADS1299 DRDY: the libgpiod v2 Python binding is not installed: pip install "
            f"'{GPIOD_PACKAGE}' (deploy/install.sh does). It gives each DRDY edge a kernel "
            "timestamp and sequence number, which is how lost and late samples are counted."
        ) from e
    if not hasattr(gpiod, "request_lines"):  # the 1.x API: gpiod.Chip(...).get_line(...)
        version = getattr(gpiod, "__version__", "") or "1.x"
        raise FrontEndError(
            f"ADS1299 DRDY: the installed gpiod module is the libgpiod 1.x API ({version}; "
            "Debian's python3-libgpiod on bookworm); ionm needs the v2 API: pip install "
            f"'{GPIOD_PACKAGE}' into the appliance's venv (deploy/install.sh does)."
        )
    return gpiod


class GpiodDrdy:
    """DRDY via libgpiod v2: falling-edge events carry the kernel's line sequence number and
    CLOCK_MONOTONIC timestamp, so missed conversions are counted exactly even when this process
    was descheduled, and a read that started too late after its edge is recognised."""

    def __init__(self, pin: int, chip_path: str | None = None) -> None:
        gpiod = check_gpiod()
        from gpiod.line import Bias, Direction, Edge  # type: ignore[import-not-found]

        chip_path = chip_path or header_gpiochip()
        self.name = f"DRDY on BCM{pin} ({chip_path}; frontend.drdy_pin = {pin})"
        self.pin = pin
        try:
            self._req = gpiod.request_lines(
                chip_path, consumer="ionm-ads1299",
                config={pin: gpiod.LineSettings(direction=Direction.INPUT,
                                                edge_detection=Edge.FALLING, bias=Bias.PULL_UP)},
            )
        except (OSError, ValueError) as e:
            raise FrontEndError(f"ADS1299 {self.name}: cannot request the line ({e}).") from e
        self.sequence = 0
        self.timestamp_ns = 0
        self._closed = False

    @staticmethod
    def clock_ns() -> int:
        return time.monotonic_ns()  # libgpiod v2's default event clock

    def wait(self, timeout_s: float) -> bool:
        if not self._req.wait_edge_events(timeout_s):
            return False
        events = self._req.read_edge_events()
        if not events:
            return False
        last = events[-1]  # the newest; earlier ones were overwritten (the sequence jumps)
        self.sequence = int(last.line_seqno)
        self.timestamp_ns = int(last.timestamp_ns)
        return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._req.release()


# labels of the gpiochip that drives the 40-pin header (Pi 5: RP1; Pi 4; Pi 3 and earlier)
HEADER_CHIP_LABELS = ("pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835")


def header_gpiochip() -> str:
    """Path of the header's gpiochip (it is not gpiochip0 on every Pi 5 kernel)."""
    import glob

    import gpiod  # type: ignore[import-not-found]

    for path in sorted(glob.glob("/dev/gpiochip*")):
        try:
            with gpiod.Chip(path) as chip:
                if chip.get_info().label in HEADER_CHIP_LABELS:
                    return path
        except OSError:
            continue
    return "/dev/gpiochip0"


def open_drdy(pin: int) -> Drdy:
    """libgpiod v2 or a FrontEndError naming the package: without edge sequence numbers and
    timestamps lost and mixed samples cannot be counted, so there is no fallback."""
    return GpiodDrdy(pin)
