"""The Qt tray applet; arrives with the applet issue."""
