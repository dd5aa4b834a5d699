"""Evoked-potential analysis: the monitor (sweeps -> averages -> measures), baselines, criteria."""
