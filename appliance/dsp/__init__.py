"""The lean numpy core: arrays in, arrays out, no I/O, no threads.

Stages, in the order the monitor chains them (each module documents its array shapes):

- `events`    trigger bits -> absolute stimulus sample indices (`EdgeDetector`)
- `filters`   band-pass / notch SOS design, `StreamingFilter` (causal, state across blocks),
              `zero_phase_sweeps` (forward-backward on padded sweeps), `FilterSpec`
- `epochs`    `Epocher`: sweeps cut around events, across block boundaries; `baseline_correct`
- `reject`    `Rejector`: amplitude, saturated, flat, cautery; counts by reason
- `averagers` cumulative, moving window, exponential, noise-weighted; odd/even halves
- `quality`   residual noise (± reference), Fsp, SNR, split-half correlation
- `peaks`     named components, sub-sample latency, confidence; tcMEP onset/p2p/area

Conventions: sweeps are (n_sweeps, n_channels, n_times) float64 µV; sample indices are int64
absolute indices since the stream started; every function returns the documented dtype even
when its input is empty.
"""
