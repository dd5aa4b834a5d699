from dataclasses import dataclass

from appliance.validate import field

FRONTEND_KINDS = ("simulated", "ads1299", "ads1299-emulated", "cyton", "recording")


@dataclass(frozen=True)
class FrontendSettings:
    kind: str = field("simulated", choices=FRONTEND_KINDS, help="where samples come from")
    sample_rate_hz: int = field(
        4000, choices=(250, 500, 1000, 2000, 4000, 8000, 16000), help="ADS1299 data rate"
    )
    channels: tuple[str, ...] = field(
        ["C3'-Fz", "C4'-Fz", "Cv5-Fz", "Erb-L", "Erb-R", "Cz'-Fz", "Pf-L", "Pf-R"],
        help="recording channel names, one per ADC channel in order",
    )
    gain: int = field(24, choices=(1, 2, 4, 6, 8, 12, 24), help="PGA gain for every channel")
    block_ms: float = field(16.0, min=5.0, max=100.0, help="block length shipped to the monitor")
    port: str = field("", help="serial port for kind=cyton, e.g. /dev/ttyUSB0")
    spi_bus: int = field(0, min=0, max=6)
    spi_device: int = field(0, min=0, max=3)
    spi_speed_hz: int = field(
        2_000_000, min=100_000, max=20_000_000,
        help="SCLK for commands and registers (RREG/WREG bytes go back to back: <= 4 MHz)")
    spi_read_speed_hz: int = field(
        0, min=100_000, max=20_000_000, special={0: "same as spi_speed_hz"},
        help="SCLK for the per-sample data reads (ADS1299: up to 20 MHz; 16 kSPS needs >= 8 MHz)")
    reader_cpu: int = field(
        -1, min=0, max=1023, special={-1: "not pinned"},
        help="CPU the ADS1299 reader thread is pinned to (an isolcpus core), -1: any")
    faithful_emulator: bool = field(
        True, help="ads1299-emulated with realtime: the chip on its own clock (overwrites, "
        "mixed late reads, SPI bus time); false: the step-wise emulator")
    drdy_pin: int = field(26, min=0, max=27, help="BCM pin of DRDY (PiEEG: 26)")
    scenario: str = field("", help="scenario TOML for kind=simulated (empty: stable patient)")
    seed: int = field(1, min=0, max=2**32 - 1, help="random seed of the simulated patient")
    recording_path: str = field("", help="EDF/BDF(+) file for kind=recording")
    realtime: bool = field(True, help="pace simulated/recording sources at the sample rate")
    trigger_mask: int = field(0xFF, min=0, max=0xFFFF, help="trigger bits taken from a recording")
    stall_s: float = field(0.5, min=0.05, max=10.0, help="no block for this long -> tech.stall")
    stimulator: bool = field(False, help="trigger an external stimulator from Pi GPIO outputs")
    stim_pins: dict[str, int] = field(
        {}, min=0, max=27, help="site name -> BCM pin of its stimulator trigger"
    )
    stim_pulse_ms: float = field(1.0, min=0.05, max=50.0, help="trigger pulse length")
    stim_jitter_ms: float = field(0.0, min=0.0, max=100.0, help="± random jitter of stimuli")
