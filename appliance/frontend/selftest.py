"""`ionm selftest [--config C | --emulated] [--json]`: check an ADS1299 front end before a case.

Steps, each on every channel: the chip ID; the internal test signal (1.875 mV square at
fCLK/2^20, pass within 5 %), which proves the whole gain path; shorted-input noise in µV RMS;
lead-off per electrode (P and N); the die temperature. Prints a table a technologist reads
(or JSON) and exits 1 when anything fails. `--fault` injects a fault into the emulator, to see
what a failure looks like.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from appliance.errors import CommandError, ConfigError, FrontEndError
from appliance.frontend.ads1299.compiled import compiled_unavailable_reason
from appliance.frontend.ads1299.driver import ChipConfig
from appliance.frontend.ads1299.emulator import TEMP_UV_AT_25C, TEMP_UV_PER_C
from appliance.frontend.ads1299.frontend import Ads1299FrontEnd
from appliance.frontend.ads1299.registers import (
    N_CHIP_CHANNELS,
    TEST_AMPLITUDE_UV,
    Mux,
    TestFreq,
    describe_id,
)

TEST_TOLERANCE_PCT = 5.0
RATE_TOLERANCE_PCT = 1.0  # the chip's rate is fCLK / 2^k: a larger error is a wrong clock or pin
TEST_SECONDS = 1.1  # > 2 periods of the ~1.95 Hz square
NOISE_SECONDS = 0.5
SETTLE_SECONDS = 0.05  # discarded after every reconfiguration (digital filter settling)
# Shorted-input noise limits (µV RMS) per gain: a few times the datasheet's typical figures at
# the highest data rates, so a pass means "nothing is broken", not "best case".
NOISE_LIMIT_UV_RMS = {24: 5.0, 12: 6.0, 8: 8.0, 6: 10.0, 4: 12.0, 2: 25.0, 1: 50.0}
FLAT_UV_RMS = 0.01  # a real ADC always shows some noise: less means a stuck channel
TEMP_RANGE_C = (0.0, 85.0)


@dataclass
class ChannelResult:
    channel: int  # 1-based, across chips
    name: str
    test_signal_mv: float
    test_deviation_pct: float
    noise_uv_rms: float
    noise_limit_uv_rms: float
    lead_off_p: bool
    lead_off_n: bool
    ok: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class SelftestReport:
    source: str
    chips: list[dict[str, object]] = field(default_factory=list)
    channels: list[ChannelResult] = field(default_factory=list)
    temperature_c: float | None = None
    temperature_ok: bool = False
    drdy_pin: int | None = None  # frontend.drdy_pin (BCM)
    reader: str = ""  # "python" or the compiled reader's kind
    reader_note: str = ""  # why the Python reader ran
    conversion_rate_hz: float | None = None  # from the DRDY edge timestamps
    rate_ok: bool = False
    ok: bool = False
    error: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def square_amplitude_uv(x: np.ndarray) -> np.ndarray:
    """Half the distance between the high and low plateaus of square waves (n_ch, n) -> (n_ch,).
    Split halfway between the extremes, not at the median: a window holding more high than low
    samples has its median on the high plateau, which left nothing 'above' it."""
    if x.shape[1] == 0:
        return np.zeros(x.shape[0])
    mid = (x.max(axis=1, keepdims=True) + x.min(axis=1, keepdims=True)) / 2
    hi = np.where(x > mid, x, np.nan)
    lo = np.where(x <= mid, x, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-flat channel has no 'high'
        amp = (np.nanmedian(hi, axis=1) - np.nanmedian(lo, axis=1)) / 2
    return np.nan_to_num(amp, nan=0.0)


def _measure(fe: Ads1299FrontEnd, configs: list[ChipConfig], seconds: float):
    fe.reconfigure(configs)
    fs = fe.sample_rate_hz
    settle = fe.read_frames(max(1, int(SETTLE_SECONDS * fs)), timeout_s=1.0)
    frames = fe.read_frames(int(seconds * fs), timeout_s=1.0) if settle is not None else None
    if frames is None:
        raise FrontEndError(f"ADS1299 {fe.chips[0].name}: no DRDY edge within 1 s in the self "
                            f"test{fe.drdy_hint() or ' (DRDY stalled)'}")
    good = frames.valid
    return frames, good


def run_selftest(fe: Ads1299FrontEnd, source: str, require_leads: bool = False) -> SelftestReport:
    """Run every step on a started front end; leaves it in its operating configuration."""
    rep = SelftestReport(source=source)
    n_ch = len(fe.channel_names)
    for chip in fe.chips:
        rep.chips.append({"device": chip.name, "id": chip.id_byte,
                          "id_text": describe_id(chip.id_byte or 0), "ok": True})
    operating = list(fe.configs)
    all_ch = (Mux.NORMAL,) * N_CHIP_CHANNELS
    on = (False,) * N_CHIP_CHANNELS

    test_cfg = [replace(c, mux=(Mux.TEST,) * N_CHIP_CHANNELS, power_down=on, test_signal=True,
                        test_freq=TestFreq.FAST) for c in operating]
    frames, good = _measure(fe, test_cfg, TEST_SECONDS)
    rep.drdy_pin = fe.drdy_pin
    rep.reader = getattr(fe.reader, "kind", type(fe.reader).__name__)
    if rep.reader == "python":
        rep.reader_note = compiled_unavailable_reason() or (
            "the emulator is read by the Python reader (the compiled reader is built; it reads "
            "real chips)" if fe.board is not None else "")
    rate = fe.measured_rate_hz()
    rep.conversion_rate_hz = None if rate is None else round(rate, 2)
    rep.rate_ok = rate is not None and abs(rate / fe.sample_rate_hz - 1) * 100 <= RATE_TOLERANCE_PCT
    amp_uv = square_amplitude_uv(frames.data_uv[:n_ch, good])
    dev_pct = (amp_uv / TEST_AMPLITUDE_UV - 1) * 100

    short_cfg = [replace(c, mux=(Mux.SHORTED,) * N_CHIP_CHANNELS, power_down=on,
                         test_signal=False) for c in operating]
    frames, good = _measure(fe, short_cfg, NOISE_SECONDS)
    noise = frames.data_uv[:n_ch, good].std(axis=1)

    temp_cfg = [replace(c, mux=(Mux.TEMPERATURE,) * N_CHIP_CHANNELS, power_down=on,
                        lead_off_sens_p=0, lead_off_sens_n=0) for c in operating]
    frames, good = _measure(fe, temp_cfg, 0.1)
    temp_uv = float(np.median(frames.data_uv[:n_ch, good]))
    rep.temperature_c = round((temp_uv - TEMP_UV_AT_25C) / TEMP_UV_PER_C + 25.0, 1)
    rep.temperature_ok = TEMP_RANGE_C[0] <= rep.temperature_c <= TEMP_RANGE_C[1]

    lead_cfg = [replace(c, mux=all_ch) if c.lead_off_on else c for c in operating]
    frames, good = _measure(fe, lead_cfg, 0.1)
    off_p = frames.lead_off_p[:n_ch, good].any(axis=1)
    off_n = frames.lead_off_n[:n_ch, good].any(axis=1)
    fe.reconfigure(operating)

    for i, name in enumerate(fe.channel_names):
        gain = operating[i // N_CHIP_CHANNELS].gains[i % N_CHIP_CHANNELS]
        limit = NOISE_LIMIT_UV_RMS[gain]
        problems = []
        if abs(dev_pct[i]) > TEST_TOLERANCE_PCT:
            problems.append(f"test signal {amp_uv[i] / 1000:.3f} mV, expected "
                            f"{TEST_AMPLITUDE_UV / 1000:.3f} mV ± {TEST_TOLERANCE_PCT:.0f} %")
        if noise[i] > limit:
            problems.append(f"noise {noise[i]:.2f} µV RMS above {limit:.1f}")
        if noise[i] < FLAT_UV_RMS:
            problems.append("flat output (stuck channel)")
        if require_leads and (off_p[i] or off_n[i]):
            problems.append("electrode off")
        rep.channels.append(ChannelResult(
            i + 1, name, round(float(amp_uv[i]) / 1000, 4), round(float(dev_pct[i]), 2),
            round(float(noise[i]), 3), limit, bool(off_p[i]), bool(off_n[i]), not problems,
            problems))
    rep.ok = rep.temperature_ok and rep.rate_ok and all(c.ok for c in rep.channels)
    return rep


def format_table(rep: SelftestReport) -> str:
    ok = {True: "PASS", False: "FAIL"}
    lines = [f"ADS1299 self test ({rep.source})", ""]
    for c in rep.chips:
        lines.append(f"chip on {c['device']}: ID {c['id_text']}  {ok[bool(c['ok'])]}")
    if rep.error:
        lines += ["", f"ERROR: {rep.error}", "", "RESULT: FAIL"]
        return "\n".join(lines)
    lines += ["", f"{'ch':>2}  {'name':<10} {'test signal':>12} {'dev':>7}  "
              f"{'noise µV RMS':>12}  {'lead P/N':<9} result"]
    for r in rep.channels:
        leads = f"{'OFF' if r.lead_off_p else 'on'}/{'OFF' if r.lead_off_n else 'on'}"
        lines.append(
            f"{r.channel:>2}  {r.name:<10} {r.test_signal_mv:>9.3f} mV "
            f"{r.test_deviation_pct:>+6.1f}%  {r.noise_uv_rms:>12.2f}  {leads:<9} {ok[r.ok]}"
            + (f"  ({'; '.join(r.problems)})" if r.problems else ""))
    rate = "-" if rep.conversion_rate_hz is None else f"{rep.conversion_rate_hz:g} SPS"
    lines += ["", f"DRDY on frontend.drdy_pin = {rep.drdy_pin}: conversion rate {rate} "
              f"(from DRDY timestamps; reader: {rep.reader})  {ok[rep.rate_ok]}",
              *([f"reader python: {rep.reader_note}"] if rep.reader_note else []),
              f"temperature {rep.temperature_c} °C  {ok[rep.temperature_ok]}",
              f"expected test signal {TEST_AMPLITUDE_UV / 1000:.3f} mV ± "
              f"{TEST_TOLERANCE_PCT:.0f} %; lead P/N: electrode on / OFF per the lead-off "
              "comparators",
              "", f"RESULT: {ok[rep.ok]}"]
    return "\n".join(lines)


def _apply_fault(fe: Ads1299FrontEnd, fault: str) -> None:
    """id:0x00 | gain:CH:FACTOR | stuck:CH | stall  (channels 1-based)."""
    board = fe.board
    assert board is not None
    kind, _, rest = fault.partition(":")
    try:
        if kind == "id":
            chip = board.chips[0]
            chip_id = int(rest, 0)
            if not 0 <= chip_id <= 0xFF:  # one register byte
                raise ValueError(rest)
            chip.chip_id = chip_id
            chip.regs[0] = chip_id
        elif kind in ("gain", "stuck"):
            ch_s, _, factor = rest.partition(":")
            ch = int(ch_s) - 1
            if not 0 <= ch < len(board.chips) * N_CHIP_CHANNELS:  # -1 would index from the end
                raise ValueError(ch_s)
            chip = board.chips[ch // N_CHIP_CHANNELS]
            if kind == "gain":
                gain = float(factor)
                if not (math.isfinite(gain) and gain > 0):  # nan would poison the decode
                    raise ValueError(factor)
                chip.faults.gain_error[ch % N_CHIP_CHANNELS] = gain
            else:
                chip.faults.stuck[ch % N_CHIP_CHANNELS] = True
        elif kind == "stall":
            for chip in board.chips:
                chip.faults.drdy_stalled = True
        else:
            raise ValueError(kind)
    except (ValueError, IndexError) as e:
        raise CommandError(  # a usage error: the top-level handler exits 2
            f"--fault: got {fault!r}, allowed: id:0x00-0xFF, gain:CH:FACTOR (> 0), stuck:CH, stall "
            f"(CH 1-{len(board.chips) * N_CHIP_CHANNELS})."
        ) from e


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="ionm selftest", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--config", help="config TOML (frontend.kind ads1299 or ads1299-emulated)")
    src.add_argument("--emulated", action="store_true", help="use the register-level emulator")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--require-leads", action="store_true",
                    help="fail when an electrode is off (default: report only)")
    ap.add_argument("--fault", action="append", default=[],
                    help="emulator only: id:0x00, gain:CH:FACTOR, stuck:CH, stall")
    args = ap.parse_args(argv)
    from appliance import config as config_mod

    try:
        cfg = config_mod.load(args.config) if args.config else config_mod.Config()
    except ConfigError as e:
        print(f"ionm selftest: config error: {e}", file=sys.stderr)
        return 2
    emulated = args.emulated or cfg.frontend.kind == "ads1299-emulated"
    if args.fault and not emulated:
        ap.error("--fault needs the emulator (--emulated or frontend.kind = ads1299-emulated)")
    if not emulated and cfg.frontend.kind != "ads1299":
        ap.error(f"frontend.kind is {cfg.frontend.kind!r}; the self test needs an ADS1299")
    cfg = replace(cfg, frontend=replace(cfg.frontend, realtime=False) if emulated
                  else cfg.frontend)
    fe = None
    source = "emulated" if emulated else f"spidev{cfg.frontend.spi_bus}.{cfg.frontend.spi_device}"
    source += (f", {len(cfg.frontend.channels)} channels, {cfg.frontend.sample_rate_hz} SPS, "
               f"gain {cfg.frontend.gain}")
    try:
        fe = Ads1299FrontEnd.from_config(cfg, emulated=emulated)
        for fault in args.fault:
            _apply_fault(fe, fault)
        fe.start()
        rep = run_selftest(fe, source, args.require_leads)
    except (FrontEndError, ConfigError) as e:
        rep = SelftestReport(source=source, error=str(e))
        if fe is not None:
            rep.chips = [{"device": c.name, "id": c.id_byte,
                          "id_text": describe_id(c.id_byte) if c.id_byte is not None else "-",
                          "ok": c.id_byte is not None and c.n_channels > 0 and
                          "ID register" not in str(e)} for c in fe.chips]
    finally:
        if fe is not None:
            fe.close()
    print(json.dumps(rep.to_json(), indent=2) if args.json else format_table(rep))
    return 0 if rep.ok else 1
