"""Register-level driver for one ADS1299 behind an `SpiDevice`: commands, RREG/WREG, the
power-up sequence of the datasheet, reconfiguration while streaming, frame reads."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.errors import FrontEndError
from appliance.frontend.ads1299.decode import frame_bytes
from appliance.frontend.ads1299.registers import (
    CONFIG4_PD_LOFF_COMP,
    ID_ADS1299,
    ID_CHANNELS,
    MISC1_SRB1,
    N_CHIP_CHANNELS,
    Command,
    LeadOffCurrent,
    LeadOffFreq,
    Mux,
    Reg,
    TestFreq,
    chnset,
    config1,
    config2,
    config3,
    describe_id,
    gpio,
    loff,
)
from appliance.frontend.ads1299.spi import SpiDevice

RESET_WAIT_S = 0.001  # >> 18 tCLK (8.8 µs)
REFERENCE_SETTLE_S = 0.150  # internal reference buffer after CONFIG3.PD_REFBUF=1
_8 = (False,) * N_CHIP_CHANNELS


@dataclass(frozen=True)
class ChipConfig:
    """What one chip is set to; `registers()` turns it into register values."""

    sample_rate_hz: int = 250
    gains: tuple[int, ...] = (24,) * N_CHIP_CHANNELS
    mux: tuple[Mux, ...] = (Mux.NORMAL,) * N_CHIP_CHANNELS
    power_down: tuple[bool, ...] = _8
    srb2: tuple[bool, ...] = _8
    srb1: bool = False  # MISC1.SRB1: every N input to SRB1 (common reference montage)
    bias_sens_p: int = 0  # channels whose P input feeds the bias drive (bit mask)
    bias_sens_n: int = 0
    lead_off_sens_p: int = 0  # channels with lead-off detection on the P electrode
    lead_off_sens_n: int = 0
    lead_off_current: LeadOffCurrent = LeadOffCurrent.NA_6
    lead_off_freq: LeadOffFreq = LeadOffFreq.DC
    lead_off_threshold_code: int = 0  # 95 % / 5 %
    gpio_inputs: int = 0x0F  # GPIO1..4 as inputs: stimulus triggers in the status word
    test_signal: bool = False
    test_amp_x2: bool = False
    test_freq: TestFreq = TestFreq.SLOW
    clk_out: bool = False  # CONFIG1.CLK_EN: drive CLK for a second chip

    @property
    def lead_off_on(self) -> bool:
        return bool(self.lead_off_sens_p or self.lead_off_sens_n)

    def registers(self) -> dict[Reg, int]:
        """Register values in write order (CONFIG3 is written first by power_up)."""
        regs = {
            Reg.CONFIG1: config1(self.sample_rate_hz, clk_out=self.clk_out),
            Reg.CONFIG2: config2(self.test_signal, self.test_amp_x2, self.test_freq),
            Reg.CONFIG3: config3(bias_on=bool(self.bias_sens_p or self.bias_sens_n),
                                 bias_ref_internal=True),
            Reg.LOFF: loff(self.lead_off_threshold_code, self.lead_off_current,
                           self.lead_off_freq),
        }
        for ch in range(N_CHIP_CHANNELS):
            regs[Reg(Reg.CH1SET + ch)] = chnset(self.gains[ch], self.mux[ch], self.srb2[ch],
                                                self.power_down[ch])
        regs.update({
            Reg.BIAS_SENSP: self.bias_sens_p, Reg.BIAS_SENSN: self.bias_sens_n,
            Reg.LOFF_SENSP: self.lead_off_sens_p, Reg.LOFF_SENSN: self.lead_off_sens_n,
            Reg.LOFF_FLIP: 0, Reg.GPIO: gpio(self.gpio_inputs),
            Reg.MISC1: MISC1_SRB1 if self.srb1 else 0, Reg.MISC2: 0,
            Reg.CONFIG4: CONFIG4_PD_LOFF_COMP if self.lead_off_on else 0,
        })
        return regs

    @classmethod
    def for_channels(cls, n_used: int, sample_rate_hz: int, gain: int, lead_off: bool = True,
                     bias: bool = True, **kw: object) -> ChipConfig:
        """Used channels normal at `gain`; unused ones powered down with inputs shorted (as the
        datasheet advises). Lead-off (DC, 6 nA) and bias drive on the used channels."""
        used = [ch < n_used for ch in range(N_CHIP_CHANNELS)]
        mask = sum(1 << ch for ch in range(n_used))
        return cls(
            sample_rate_hz=sample_rate_hz, gains=(gain,) * N_CHIP_CHANNELS,
            mux=tuple(Mux.NORMAL if u else Mux.SHORTED for u in used),
            power_down=tuple(not u for u in used),
            bias_sens_p=mask if bias else 0, bias_sens_n=mask if bias else 0,
            lead_off_sens_p=mask if lead_off else 0, lead_off_sens_n=mask if lead_off else 0,
            **kw,  # type: ignore[arg-type]
        )


@dataclass
class Ads1299Chip:
    """One chip on its own chip select. `name` appears in every error (e.g. 'spidev0.0')."""

    spi: SpiDevice
    name: str = "spidev0.0"
    sleep: Callable[[float], None] = time.sleep
    n_channels: int = N_CHIP_CHANNELS
    config: ChipConfig = field(default_factory=ChipConfig)
    streaming: bool = False
    id_byte: int | None = None  # as read by check_id

    @property
    def frame_bytes(self) -> int:
        return frame_bytes(self.n_channels)

    def command(self, cmd: Command) -> None:
        self.spi.xfer2([int(cmd)])

    def rreg(self, addr: Reg | int, count: int = 1) -> list[int]:
        """Read `count` registers from `addr` (only after SDATAC; in RDATAC the chip ignores it)."""
        rx = self.spi.xfer2([Command.RREG | int(addr), count - 1] + [0] * count)
        return rx[2:]

    def wreg(self, addr: Reg | int, values: list[int]) -> None:
        self.spi.xfer2([Command.WREG | int(addr), len(values) - 1] + [v & 0xFF for v in values])

    def read_id(self) -> int:
        return self.rreg(Reg.ID)[0]

    def check_id(self) -> int:
        """Read the ID register; return the chip's channel count or raise naming both IDs."""
        chip_id = self.id_byte = self.read_id()
        n = ID_CHANNELS.get(chip_id & 0x1F)
        if n is None:
            raise FrontEndError(
                f"ADS1299 on {self.name}: ID register read {describe_id(chip_id)}, expected "
                f"0x{ID_ADS1299:02X} (ADS1299, 8 channels; -6/-4 variants 0x..1D/0x..1C). Check "
                "that the shield is seated and powered, SPI is enabled, and SPI mode is 1."
            )
        self.n_channels = n
        return n

    def power_up(self, config: ChipConfig) -> None:
        """RESET, SDATAC, ID check, internal reference, registers (verified by read-back).
        Leaves the chip stopped in SDATAC; `start()` streams."""
        self.command(Command.RESET)
        self.sleep(RESET_WAIT_S)
        self.command(Command.SDATAC)
        self.check_id()
        self.wreg(Reg.CONFIG3, [0xE0])  # internal reference on before anything else
        self.sleep(REFERENCE_SETTLE_S)
        self.write_config(config)

    def write_config(self, config: ChipConfig) -> None:
        """WREG every register from CONFIG1 to CONFIG4 in one burst, then verify by RREG."""
        regs = config.registers()
        first = Reg.CONFIG1
        values = [regs.get(Reg(a), 0) for a in range(first, Reg.CONFIG4 + 1)]
        self.wreg(first, values)
        got = self.rreg(first, len(values))
        for offset, (want, have) in enumerate(zip(values, got, strict=True)):
            reg = Reg(first + offset)
            if reg in (Reg.LOFF_STATP, Reg.LOFF_STATN):
                continue
            mask = 0x0F if reg == Reg.GPIO else 0xFF  # input pins' data bits follow the pins
            if (want ^ have) & mask:
                raise FrontEndError(
                    f"ADS1299 on {self.name}: register {reg.name} reads 0x{have:02X} after "
                    f"writing 0x{want:02X}. Check SPI wiring, mode 1 and speed (<= 4 MHz)."
                )
        self.config = config

    def start(self) -> None:
        self.command(Command.RDATAC)
        self.command(Command.START)
        self.streaming = True

    def stop(self) -> None:
        self.command(Command.STOP)
        self.command(Command.SDATAC)
        self.streaming = False

    def reconfigure(self, config: ChipConfig) -> None:
        """While streaming: STOP, SDATAC, WREG..., RDATAC, START."""
        was = self.streaming
        if was:
            self.stop()
        self.write_config(config)
        if was:
            self.start()

    def read_frame(self) -> list[int]:
        """One frame (RDATAC: clock out status + channels after DRDY)."""
        return self.spi.xfer2([0] * self.frame_bytes)
