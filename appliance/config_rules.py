"""Rules between config sections, checked at load so that `ionm check-config` rejects whatever
`run`, `replay`, `demo`, `record` or `simulate` would reject, naming the key, the value and what
is allowed. Ranges of single fields live in the settings dataclasses (appliance/validate.py).

`check` holds for the config's content (every `Config`, also one built in code); `check_files`
looks at this machine: the files the config names exist. `config.load` runs both."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from appliance.analysis.plan import plan_site
from appliance.errors import ConfigError

# appliance/frontend/cyton/protocol.py's SAMPLE_RATE_HZ and N_CHANNELS (that module imports
# numpy, which loading a config does not need): the dongle streams 250 Hz, 8 channels, no daisy
CYTON_RATE_HZ = 250
CYTON_MAX_CHANNELS = 8
ADC_FULL_SCALE_UV = 4.5e6  # ADS1299 at gain 1 (VREF 4.5 V): the range is this / gain
# ADS1299 data read: 27 bytes (216 SCLK) per chip of 8 channels, one chip select each; it must
# end before the next conversion's update, 4 tCLK (fCLK 2.048 MHz) before the next DRDY
# (docs/ads1299.md, "Timing budget"). The bus may take at most this share of that window: the
# rest is for the DRDY wake-up (tens of µs on a Pi, more in its tail) and the SPI driver.
ADS1299_FRAME_SCLK = 216
ADS1299_UPDATE_GUARD_US = 4 / 2.048
SPI_BUS_MAX_SHARE = 0.5


def check(cfg: Any) -> None:
    """Raise ConfigError for the first cross-section rule `cfg` breaks."""
    _frontend(cfg)
    _sites(cfg)
    _stimulator(cfg)
    _recording(cfg)


def _frontend(cfg: Any) -> None:
    f = cfg.frontend
    if f.kind == "cyton":
        if f.sample_rate_hz != CYTON_RATE_HZ:
            raise ConfigError(f"frontend.sample_rate_hz: got {f.sample_rate_hz}, allowed: "
                              f"{CYTON_RATE_HZ} for frontend.kind = 'cyton' (the dongle streams "
                              f"{CYTON_RATE_HZ} Hz only).")
        if len(f.channels) > CYTON_MAX_CHANNELS:
            raise ConfigError(f"frontend.channels: got {len(f.channels)} names, allowed: 1 to "
                              f"{CYTON_MAX_CHANNELS} for a Cyton (daisy boards are not supported).")
    if not f.channels:
        raise ConfigError("frontend.channels: got [], allowed: one name per recorded channel.")
    dup = sorted({c for c in f.channels if f.channels.count(c) > 1})
    if dup:
        raise ConfigError(f"frontend.channels: {dup[0]!r} appears twice; names pick channels.")
    if f.kind in ("ads1299", "ads1299-emulated"):
        _spi_read_time(f)


def _spi_read_time(f: Any) -> None:
    """The per-sample data reads (one frame per chip) must fit the sample period with margin:
    a config whose reads cannot end in time would deliver nothing (every read late)."""
    chips = -(-len(f.channels) // 8)
    sclk = f.spi_read_speed_hz or f.spi_speed_hz
    bus_us = chips * ADS1299_FRAME_SCLK / sclk * 1e6
    window_us = 1e6 / f.sample_rate_hz - ADS1299_UPDATE_GUARD_US
    if bus_us > SPI_BUS_MAX_SHARE * window_us:
        need = chips * ADS1299_FRAME_SCLK / (SPI_BUS_MAX_SHARE * window_us) * 1e6
        key = ("frontend.spi_read_speed_hz" if f.spi_read_speed_hz else
               "frontend.spi_speed_hz (frontend.spi_read_speed_hz = 0: the same)")
        raise ConfigError(
            f"{key}: got {sclk}, allowed: at least {math.ceil(need / 1e5) / 10:.1f} MHz (up to "
            f"20 MHz) for "
            f"frontend.sample_rate_hz = {f.sample_rate_hz} with {len(f.channels)} "
            f"frontend.channels ({chips} chip(s)): the reads take {bus_us:.0f} µs of the "
            f"{window_us:.1f} µs before the next conversion, more than "
            f"{SPI_BUS_MAX_SHARE:.0%} (the rest is for the DRDY wake-up). Set "
            "frontend.spi_read_speed_hz, or lower the rate or the channel count.")


def _sites(cfg: Any) -> None:
    """Every site planned as the Monitor plans it, at the configured rate: channels, windows,
    band, component windows, sweep counts; the analysis' own ConfigErrors name the key."""
    names = tuple(cfg.frontend.channels)
    for i, site in enumerate(cfg.analysis.sites):
        path = f"analysis.sites[{i}]"
        if not cfg.frontend.trigger_mask >> site.trigger_bit & 1:
            raise ConfigError(f"{path}.trigger_bit: got {site.trigger_bit}, allowed: a bit kept "
                              f"by frontend.trigger_mask ({cfg.frontend.trigger_mask:#x}); its "
                              "stimuli would never be seen.")
        plan_site(site, cfg.analysis, names, float(cfg.frontend.sample_rate_hz), path)
    a = cfg.analysis
    for key, chans in (("eeg", a.eeg.channels), ("emg_free", a.emg_free.channels),
                       ("emg_triggered", a.emg_triggered.channels)):
        for ch in chans:
            if ch not in names:
                raise ConfigError(f"analysis.{key}.channels: got {ch!r}, allowed: one of "
                                  f"frontend.channels {sorted(names)}.")


def _stimulator(cfg: Any) -> None:
    f = cfg.frontend
    sites = [s.name for s in cfg.analysis.sites]
    if not f.stimulator:
        return
    for name in sites:
        if name not in f.stim_pins:
            raise ConfigError(f"frontend.stim_pins: no pin for site {name!r}, allowed: one BCM "
                              f"pin per site when frontend.stimulator = true (have "
                              f"{dict(f.stim_pins)}).")
    for name in f.stim_pins:
        if name not in sites:
            raise ConfigError(f"frontend.stim_pins.{name}: no such site, allowed: "
                              f"{sites}.")
    pins = list(f.stim_pins.values())
    if len(set(pins)) != len(pins):
        raise ConfigError(f"frontend.stim_pins: got {dict(f.stim_pins)}, allowed: one pin per "
                          "site.")
    lights = {getattr(cfg.lights, f"{n}_pin"): n for n in
              ("red", "yellow", "cyan", "green", "paused", "buzzer", "button")}
    from appliance.settings.lights import RESERVED_PINS

    for name, pin in f.stim_pins.items():
        if RESERVED_PINS.get(pin, "stimulus") != "stimulus":
            raise ConfigError(f"frontend.stim_pins.{name}: got {pin}, allowed: a BCM pin not "
                              f"used by {RESERVED_PINS[pin]} (see hw/pinout.md).")
        if pin in lights:
            raise ConfigError(f"frontend.stim_pins.{name}: got {pin}, allowed: a pin not used "
                              f"by lights.{lights[pin]}_pin.")


def check_files(cfg: Any) -> None:
    """Files the config names exist (a scenario is also parsed: its errors name its keys), and
    frontend.reader_cpu is a CPU of this machine. An empty recording_path is left to the
    command (`ionm replay FILE` supplies it)."""
    f, m = cfg.frontend, cfg.mqtt
    named = []
    if f.kind == "simulated" and f.scenario:
        named.append(("frontend.scenario", f.scenario))
    if f.kind == "recording" and f.recording_path:
        named.append(("frontend.recording_path", f.recording_path))
    if m.enabled:
        named += [(f"mqtt.{k}", getattr(m, k)) for k in
                  ("ca_file", "cert_file", "key_file", "password_file") if getattr(m, k)]
    cpus = os.cpu_count() or 1  # all of them: an isolcpus core is outside the default affinity
    if f.kind in ("ads1299", "ads1299-emulated") and f.reader_cpu >= cpus:
        raise ConfigError(f"frontend.reader_cpu: got {f.reader_cpu}, allowed: -1 or a CPU of "
                          f"this machine (0..{cpus - 1}).")
    for key, name in named:
        if not name or not Path(name).is_file():
            raise ConfigError(f"{key}: got {name!r}, allowed: an existing file "
                              f"(relative paths start at {str(Path.cwd())!r}).")
    if f.kind == "simulated" and f.scenario:
        from appliance.frontend.simulated.scenario import load_scenario

        load_scenario(f.scenario)


def _recording(cfg: Any) -> None:
    pmax = cfg.recording.physical_max_uv
    full_uv = ADC_FULL_SCALE_UV / cfg.frontend.gain
    if pmax and pmax < full_uv and cfg.frontend.kind != "recording":
        raise ConfigError(f"recording.physical_max_uv: got {pmax:g}, allowed: 0 or at least the "
                          f"front end's full scale {full_uv:g} µV (4.5 V / frontend.gain "
                          f"{cfg.frontend.gain}); a smaller range clips the recording.")
