"""Goal 3 of issue 12 where the recorded channel really carries the change: the conventional
criteria on the synthetic stream of test_analysis_template_fit.py (a 2 µV N20-P25 only, white
noise at the issue's two levels: 300-sweep residual 0.15 / 0.3 µV), baseline on command at
130 s, change at 300 s of 560 s; a study script, not collected by pytest.

    cd tests/analysis && ../../.venv/bin/python conventional_delays_synthetic.py 1 2 3 4 5 6

prints, per noise level and change (60 % drop, loss, N20 +12 %), the first ssep.* HIGH after
the change per seed (None: not within 260 s) and the HIGHs raised before it.
"""

from __future__ import annotations

import sys

from analysis_helpers import SynthSite, blocks, synth_stream, upper_cfg

from appliance.analysis.monitor import Monitor

FS = 4000
CH = ["C4'-Fz"]
CORTICAL = [(19.5, -1.05, 1.2), (25.5, 0.95, 2.0)]  # as test_analysis_template_fit.py
SITE = {"name": "L median", "modality": "ssep_upper", "channels": CH, "trigger_bit": 0}
NOISE_UV = {"lower": 3.7, "higher": 7.4}
CHANGES = {"drop60": (0.4, 0.0), "loss": (0.0, 0.0), "latency+12%": (1.0, 0.12 * 19.5)}


def first_high(noise: str, seed: int, ratio: float, shift_ms: float,
               change_s: float = 300.0, duration_s: float = 560.0) -> tuple[float | None, int]:
    site = SynthSite(0, 4.7, {"C4'-Fz": CORTICAL},
                     scale=lambda t: ratio if t >= change_s else 1.0,
                     shift_ms=lambda t: shift_ms if t >= change_s else 0.0)
    data, trig = synth_stream(CH, FS, duration_s, [site], noise_uv=NOISE_UV[noise],
                              mains_uv=2.0, seed=seed)
    mon = Monitor(upper_cfg(CH, [SITE], FS, baseline_policy="manual"))
    first, false = None, 0
    for b in blocks(data, trig, FS, 4000):
        if b.first_sample == 130 * FS:
            mon.set_baseline()
        for o in mon.push(b):
            d = o.to_json()
            if d.get("active") and str(d.get("id", "")).startswith("ssep.") \
                    and d.get("priority") == "high":
                if d["t_s"] < change_s:
                    false += 1
                elif first is None:
                    first = round(d["t_s"] - change_s, 1)
    return first, false


if __name__ == "__main__":
    seeds = [int(s) for s in sys.argv[1:]] or [1, 2, 3]
    for noise in NOISE_UV:
        for name, (ratio, shift) in CHANGES.items():
            res = [first_high(noise, s, ratio, shift) for s in seeds]
            print(noise, name, "HIGH after the change (s):", [r[0] for r in res],
                  "HIGH before it:", sum(r[1] for r in res), flush=True)
