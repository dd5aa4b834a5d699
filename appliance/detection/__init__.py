"""Fast sequential detection of evoked-potential changes at the statistical limit.

template.py    the optimal linear (GLS) amplitude/latency estimate of one sweep against the
               baseline template, in whitened noise
cusum.py       one-sided CUSUM tests on those estimates with thresholds from false-alarm targets
detector.py    per-site detector: baseline, slow reference, CUSUM banks, Kalman trend, Conditions
conventional.py the conventional method (moving average, peak-to-peak, two confirmations)
bounds.py      sigma_a under the standard conditioning and the sequential bound n*
cases.py       seeded simulated cases for the detection benchmark
"""
