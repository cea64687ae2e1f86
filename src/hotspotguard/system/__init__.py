"""Adapters to the live system: libnftables, iptables, sysctl, routes, NetworkManager."""
