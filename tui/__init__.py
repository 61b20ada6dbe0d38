"""ptviz-tui: the terminal cockpit and command line over the headless engine."""
