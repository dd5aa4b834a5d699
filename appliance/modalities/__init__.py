"""One module per modality: its defaults, what it measures, its criteria."""
