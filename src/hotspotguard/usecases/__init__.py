"""The application's use cases, above the engine and the fixes, below the CLI, applet and helper."""
