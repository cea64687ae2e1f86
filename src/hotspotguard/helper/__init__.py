"""The privileged helper (a polkit-checked D-Bus system service); arrives with the helper issue."""
