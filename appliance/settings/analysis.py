from dataclasses import dataclass

from appliance.validate import field

MODALITIES = ("ssep_upper", "ssep_lower", "baep", "tcmep")


@dataclass(frozen=True)
class SiteSettings:
    name: str = field(help="stimulation site, e.g. 'L median'")
    modality: str = field(choices=MODALITIES, help="what is measured at this site")
    channels: tuple[str, ...] = field(help="recording channels analysed for this site")
    trigger_bit: int = field(0, min=0, max=15, help="trigger input bit that marks its stimuli")
    rate_hz: float = field(4.7, min=0.1, max=50.0, help="stimulus rate of this site")


@dataclass(frozen=True)
class AnalysisSettings:
    sites: tuple[SiteSettings, ...] = field([], help="stimulation sites and what they record")
