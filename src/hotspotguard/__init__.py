"""hotspotguard: finds and fixes the firewall rule that silently breaks a NetworkManager hotspot."""

__version__ = "0.1.0"
