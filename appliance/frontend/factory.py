"""`open_frontend(cfg)`: the front end that `cfg.frontend.kind` names.

Each kind's module is imported only when chosen, so a laptop without spidev can run the simulated
patient and a Pi without the test extras can run the ADS1299. A kind whose module (or one of its
dependencies) is missing is a FrontEndError that names the kind and the missing module; the
factory never falls back to another kind.
"""

from __future__ import annotations

import importlib
from typing import Any

from appliance.errors import FrontEndError
from appliance.frontend.block import FrontEnd

# kind -> (module, class, keyword arguments of from_config)
KINDS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "simulated": ("appliance.frontend.simulated.frontend", "SimulatedFrontEnd", {}),
    "ads1299": ("appliance.frontend.ads1299.frontend", "Ads1299FrontEnd", {"emulated": False}),
    "ads1299-emulated": ("appliance.frontend.ads1299.frontend", "Ads1299FrontEnd",
                         {"emulated": True}),
    "cyton": ("appliance.frontend.cyton.frontend", "CytonFrontEnd", {}),
    "recording": ("appliance.frontend.recording", "RecordingFrontEnd", {}),
}


def frontend_class(kind: str) -> tuple[type, dict[str, Any]]:
    if kind not in KINDS:
        raise FrontEndError(f"frontend.kind: got {kind!r}, allowed: {', '.join(KINDS)}.")
    mod_name, cls_name, kwargs = KINDS[kind]
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        missing = getattr(e, "name", None) or str(e)
        raise FrontEndError(
            f"frontend.kind {kind!r}: cannot import {mod_name} (missing module {missing!r}); "
            "install it or choose another frontend.kind."
        ) from e
    cls = getattr(mod, cls_name, None)
    if cls is None:
        raise FrontEndError(f"frontend.kind {kind!r}: {mod_name} has no {cls_name} in this build.")
    return cls, dict(kwargs)


def open_frontend(cfg: Any, **overrides: Any) -> FrontEnd:
    """Build (not start) the front end of `cfg.frontend.kind`; `overrides` go to from_config."""
    cls, kwargs = frontend_class(cfg.frontend.kind)
    kwargs.update(overrides)
    return cls.from_config(cfg, **kwargs)
