"""Everything that yields sample blocks, and the emulators that stand in for hardware."""

from appliance.frontend.block import FrontEnd, FrontEndHealth, SampleBlock

__all__ = ["FrontEnd", "FrontEndHealth", "SampleBlock"]
