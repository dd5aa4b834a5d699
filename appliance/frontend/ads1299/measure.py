"""Measure the Python reader against the faithful emulator (figures for docs/ads1299.md):

    python -m appliance.frontend.ads1299.measure [--rate 4000] [--channels 8] [--sclk 4000000]
                                                 [--read-sclk 0] [--seconds 5] [--json]

--sclk clocks the registers (frontend.spi_speed_hz), --read-sclk the data reads
(frontend.spi_read_speed_hz; 0: the same).

The chip converts on its own clock; a consumer drains and decodes 16 ms blocks as the front end
does. Reports the edge-to-read-end latency (DRDY wake-up + SPI bus time + the loop's Python,
p50/p99/max in µs, against the budget: period - 4 tCLK) and every conversion's fate (read,
overwritten, read too late, ring overflow). Timing depends on the machine's load: give it.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from appliance.frontend.ads1299.emulator import EmulatedBoard
from appliance.frontend.ads1299.frontend import Ads1299FrontEnd
from appliance.frontend.ads1299.reader import PythonFrameReader, read_deadline_ns


def measure(rate_hz: int = 4000, n_channels: int = 8, sclk_hz: int = 4_000_000,
            seconds: float = 5.0, read_sclk_hz: int = 0) -> dict[str, object]:
    n_chips = (n_channels + 7) // 8
    board = EmulatedBoard(None, rate_hz, n_chips=n_chips, faithful=True)
    for chip in board.chips:
        chip.max_speed_hz = sclk_hz
    reader = PythonFrameReader(board.chips, board.drdy(0), 27, rate_hz,
                               read_order=range(n_chips - 1, -1, -1),
                               record_latency=int(seconds * rate_hz * 1.2),
                               read_speed_hz=read_sclk_hz)
    fe = Ads1299FrontEnd(list(board.chips), board.drdy(0),
                         tuple(f"ch{i + 1}" for i in range(n_channels)), rate_hz,
                         sleep=board.sleep, board=board, reader=reader)
    fe.start()
    delivered = 0
    try:
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            b = fe.read_block(timeout_s=0.5)
            delivered += 0 if b is None else b.n_samples
    finally:
        fe.close()
    lat_us = reader.latency_ns[:reader.n_latency] / 1e3
    counts = reader.counts()
    p50, p99, worst = (np.percentile(lat_us, [50, 99, 100]) if lat_us.size else [np.nan] * 3)
    return {
        "rate_hz": rate_hz, "channels": n_channels, "sclk_hz": read_sclk_hz or sclk_hz,
        "register_sclk_hz": sclk_hz, "seconds": seconds,
        "budget_us": read_deadline_ns(rate_hz) / 1e3,
        "bus_us": n_chips * 27 * 8 / (read_sclk_hz or sclk_hz) * 1e6,
        "edge_to_read_end_us": {"p50": round(float(p50), 1), "p99": round(float(p99), 1),
                                "max": round(float(worst), 1)},
        "counts": counts, "delivered": delivered,
        "lost_fraction": round(1 - counts["frames"] / max(1, counts["seen"]), 5),
        "loadavg_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=4000)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--sclk", type=int, default=4_000_000)
    ap.add_argument("--read-sclk", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    r = measure(args.rate, args.channels, args.sclk, args.seconds, args.read_sclk)
    if args.json:
        print(json.dumps(r))
    else:
        lat = r["edge_to_read_end_us"]
        print(f"{r['channels']} ch at {r['rate_hz']} SPS, SCLK {r['sclk_hz'] / 1e6:g} MHz: "
              f"edge -> read end p50 {lat['p50']} µs, p99 {lat['p99']} µs, max {lat['max']} µs "
              f"(budget {r['budget_us']:.1f} µs, bus {r['bus_us']:.0f} µs); {r['counts']}; "
              f"lost {100 * r['lost_fraction']:.3f} %; load {r['loadavg_1min']} on {r['cpus']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
