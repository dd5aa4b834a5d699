"""ADS1299 commands, register map, reset defaults and value builders (TI SBAS499C).

Everything here is pure: names for wire values, and functions that build register bytes from
quantities (`config1(rate_hz=4000)`, `chnset(gain=24, mux=Mux.NORMAL)`).
"""

from __future__ import annotations

from enum import IntEnum

from appliance.errors import ConfigError

F_CLK_HZ = 2_048_000  # internal oscillator
VREF_V = 4.5
FULL_SCALE_POS = 0x7FFFFF
FULL_SCALE_NEG = -0x800000
STATUS_NIBBLE = 0xC
N_CHIP_CHANNELS = 8  # the ADS1299 (-6/-4 variants have fewer; see ID_CHANNELS)


class Command(IntEnum):
    WAKEUP = 0x02
    STANDBY = 0x04
    RESET = 0x06
    START = 0x08
    STOP = 0x0A
    RDATAC = 0x10
    SDATAC = 0x11
    RDATA = 0x12
    RREG = 0x20  # | address, then count - 1
    WREG = 0x40  # | address, then count - 1


SYSTEM_COMMANDS = frozenset(
    {Command.WAKEUP, Command.STANDBY, Command.RESET, Command.START, Command.STOP}
)
RESET_TCLK = 18  # the RESET command needs 18 tCLK to execute


class Reg(IntEnum):
    ID = 0x00
    CONFIG1 = 0x01
    CONFIG2 = 0x02
    CONFIG3 = 0x03
    LOFF = 0x04
    CH1SET = 0x05
    CH2SET = 0x06
    CH3SET = 0x07
    CH4SET = 0x08
    CH5SET = 0x09
    CH6SET = 0x0A
    CH7SET = 0x0B
    CH8SET = 0x0C
    BIAS_SENSP = 0x0D
    BIAS_SENSN = 0x0E
    LOFF_SENSP = 0x0F
    LOFF_SENSN = 0x10
    LOFF_FLIP = 0x11
    LOFF_STATP = 0x12
    LOFF_STATN = 0x13
    GPIO = 0x14
    MISC1 = 0x15
    MISC2 = 0x16
    CONFIG4 = 0x17


N_REGISTERS = 0x18
READ_ONLY = frozenset({Reg.ID, Reg.LOFF_STATP, Reg.LOFF_STATN})
ID_ADS1299 = 0x3E

RESET_DEFAULTS: dict[Reg, int] = {r: 0x00 for r in Reg}
RESET_DEFAULTS.update(
    {Reg.CONFIG1: 0x96, Reg.CONFIG2: 0xC0, Reg.CONFIG3: 0x60, Reg.GPIO: 0x0F}
)
RESET_DEFAULTS.update({Reg(Reg.CH1SET + i): 0x61 for i in range(8)})
RESET_DEFAULTS[Reg.ID] = ID_ADS1299

# `id & 0x1F` -> channels on the chip (REV_ID bits [7:5] vary between silicon revisions)
ID_CHANNELS = {0x1E: 8, 0x1D: 6, 0x1C: 4}


def chset_reg(channel: int) -> Reg:
    """CHnSET register for a 0-based channel index."""
    if not 0 <= channel < N_CHIP_CHANNELS:
        raise ConfigError(f"ADS1299 channel index: got {channel}, allowed: 0..7.")
    return Reg(Reg.CH1SET + channel)


class Gain(IntEnum):
    """CHnSET GAIN[6:4] codes; `Gain.X24.factor == 24`."""

    X1 = 0
    X2 = 1
    X4 = 2
    X6 = 3
    X8 = 4
    X12 = 5
    X24 = 6

    @property
    def factor(self) -> int:
        return GAIN_FACTORS[self]


GAIN_FACTORS = {Gain.X1: 1, Gain.X2: 2, Gain.X4: 4, Gain.X6: 6, Gain.X8: 8, Gain.X12: 12,
                Gain.X24: 24}
GAIN_CODES = {v: k for k, v in GAIN_FACTORS.items()}  # factor -> code


class Mux(IntEnum):
    NORMAL = 0
    SHORTED = 1
    BIAS_MEAS = 2
    MVDD = 3
    TEMPERATURE = 4
    TEST = 5
    BIAS_DRP = 6
    BIAS_DRN = 7


MUX_TEXT = {Mux.NORMAL: "normal electrode input", Mux.SHORTED: "inputs shorted",
            Mux.BIAS_MEAS: "bias measurement", Mux.MVDD: "supply measurement",
            Mux.TEMPERATURE: "temperature sensor", Mux.TEST: "internal test signal",
            Mux.BIAS_DRP: "bias drive (P)", Mux.BIAS_DRN: "bias drive (N)"}

# CONFIG1 DR[2:0] at fCLK = 2.048 MHz; 0b111 is reserved.
DATA_RATE_CODES = {16000: 0, 8000: 1, 4000: 2, 2000: 3, 1000: 4, 500: 5, 250: 6}
DATA_RATES_HZ = {v: k for k, v in DATA_RATE_CODES.items()}


def uv_per_count(gain: int) -> float:
    """1 LSB in µV: (2 VREF / gain) / 2^24 = 4.5 V / gain / 2^23."""
    return VREF_V * 1e6 / gain / 2**23


def config1(rate_hz: int, daisy: bool = True, clk_out: bool = False) -> int:
    """CONFIG1: bit7 and bit4 reserved 1; bit6 DAISY_EN (0 = daisy chain); bit5 CLK_EN; DR."""
    if rate_hz not in DATA_RATE_CODES:
        raise ConfigError(
            f"ADS1299 data rate: got {rate_hz}, allowed: {sorted(DATA_RATE_CODES)} SPS."
        )
    return 0x90 | (0 if daisy else 0x40) | (0x20 if clk_out else 0) | DATA_RATE_CODES[rate_hz]


def rate_from_config1(value: int) -> int | None:
    """Data rate in SPS for a CONFIG1 value, None for the reserved code."""
    return DATA_RATES_HZ.get(value & 0x07)


class TestFreq(IntEnum):
    SLOW = 0  # fCLK / 2^21 ~ 0.98 Hz square
    FAST = 1  # fCLK / 2^20 ~ 1.95 Hz square
    DC = 3


def config2(internal_test: bool = False, amp_x2: bool = False,
            freq: TestFreq = TestFreq.SLOW) -> int:
    """CONFIG2: bits 7:6 reserved 1; INT_CAL(4); CAL_AMP(2); CAL_FREQ[1:0]. 0xD0 = test on."""
    return 0xC0 | (0x10 if internal_test else 0) | (0x04 if amp_x2 else 0) | int(freq)


TEST_AMPLITUDE_UV = VREF_V * 1e6 / 2400  # 1.875 mV (x2 with CAL_AMP)


def config3(ref_on: bool = True, bias_on: bool = False, bias_ref_internal: bool = False,
            bias_meas: bool = False, bias_loff_sens: bool = False) -> int:
    """CONFIG3: PD_REFBUF(7); bits 6:5 reserved 1; BIAS_MEAS(4); BIASREF_INT(3); PD_BIAS(2);
    BIAS_LOFF_SENS(1). 0xE0 = internal reference on, bias off."""
    return (0x80 if ref_on else 0) | 0x60 | (0x10 if bias_meas else 0) | (
        0x08 if bias_ref_internal else 0) | (0x04 if bias_on else 0) | (
        0x02 if bias_loff_sens else 0)


def chnset(gain: int = 24, mux: Mux = Mux.NORMAL, srb2: bool = False,
           power_down: bool = False) -> int:
    """CHnSET: PD(7) GAIN[6:4] SRB2(3) MUX[2:0]. `gain` is the factor (1..24)."""
    if gain not in GAIN_CODES:
        raise ConfigError(f"ADS1299 gain: got {gain}, allowed: {sorted(GAIN_CODES)}.")
    return (0x80 if power_down else 0) | (GAIN_CODES[gain] << 4) | (0x08 if srb2 else 0) | int(mux)


def parse_chnset(value: int) -> tuple[bool, int | None, bool, Mux]:
    """(power_down, gain factor or None for the invalid code 111, srb2, mux)."""
    code = (value >> 4) & 0x07
    gain = GAIN_FACTORS.get(Gain(code)) if code < 7 else None
    return bool(value & 0x80), gain, bool(value & 0x08), Mux(value & 0x07)


class LeadOffCurrent(IntEnum):
    NA_6 = 0
    NA_24 = 1
    UA_6 = 2
    UA_24 = 3


class LeadOffFreq(IntEnum):
    DC = 0
    HZ_7_8 = 1
    HZ_31_2 = 2
    FDR_4 = 3


# COMP_TH[7:5]: positive-side threshold in % of full scale
LOFF_THRESHOLDS_PCT = {0: 95.0, 1: 92.5, 2: 90.0, 3: 87.5, 4: 85.0, 5: 80.0, 6: 75.0, 7: 70.0}


def loff(threshold_code: int = 0, current: LeadOffCurrent = LeadOffCurrent.NA_6,
         freq: LeadOffFreq = LeadOffFreq.DC) -> int:
    """LOFF: COMP_TH[7:5] ILEAD_OFF[3:2] FLEAD_OFF[1:0]."""
    if not 0 <= threshold_code <= 7:
        raise ConfigError(f"ADS1299 lead-off threshold code: got {threshold_code}, allowed 0..7.")
    return (threshold_code << 5) | (int(current) << 2) | int(freq)


MISC1_SRB1 = 0x20
CONFIG4_SINGLE_SHOT = 0x08
CONFIG4_PD_LOFF_COMP = 0x02


def gpio(inputs_mask: int = 0x0F, outputs: int = 0) -> int:
    """GPIO: GPIOD[7:4] data for output pins, GPIOC[3:0] direction (1 = input)."""
    return ((outputs & 0x0F) << 4) | (inputs_mask & 0x0F)


def describe_id(id_byte: int) -> str:
    n = ID_CHANNELS.get(id_byte & 0x1F)
    if n is None:
        absent = "; no chip answering" if id_byte in (0x00, 0xFF) else ""
        return f"0x{id_byte:02X} (not an ADS1299{absent})"
    suffix = "" if n == 8 else f"-{n}"
    return f"0x{id_byte:02X} (ADS1299{suffix}, {n} channels, revision {id_byte >> 5})"
