"""Modal screens: help, confirmations and prompts."""
