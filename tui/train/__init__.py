"""The Train tab: live charts, the log, the status line and the device panel."""
