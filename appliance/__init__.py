"""Open intraoperative neuromonitoring (IONM) appliance.

Research software: NOT a certified medical device. See README.md.
"""

__version__ = "0.1.0"

NOT_A_MEDICAL_DEVICE = (
    "ionm-appliance is research software and NOT a certified medical device: "
    "it must not be the sole basis of any clinical decision, and hobby ADS1299 boards "
    "(PiEEG, Cyton) are not isolated for patient connection (see hw/safety.md)."
)
