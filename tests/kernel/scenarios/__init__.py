"""Named firewall scenarios for the kernel oracle (see corpus.py)."""

from .corpus import BY_NAME, SCENARIOS
from .model import Scenario, kernel_short

__all__ = ["BY_NAME", "SCENARIOS", "Scenario", "kernel_short"]
