"""`ionm bench cyton`: the Cyton packet parser vs a plain per-packet loop (see docs/cyton.md)."""

from appliance.frontend.cyton.bench import run

__all__ = ["run"]
