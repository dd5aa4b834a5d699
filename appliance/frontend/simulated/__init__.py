"""The simulated patient: a seeded, streaming signal source with scripted scenarios."""
