"""Pure evaluation of a hotspot client's packets through every base chain of each hook."""

from hotspotguard.verdict.engine import ChainVisit, Drop, FlowResult, HookIndex, Step
from hotspotguard.verdict.evaluate import HotspotVerdict, Report, evaluate, evaluate_flow
from hotspotguard.verdict.flows import Flow, Packet, hotspot_flows

__all__ = [
    "ChainVisit",
    "Drop",
    "Flow",
    "FlowResult",
    "HookIndex",
    "HotspotVerdict",
    "Packet",
    "Report",
    "Step",
    "evaluate",
    "evaluate_flow",
    "hotspot_flows",
]
