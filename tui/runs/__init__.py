"""The Runs tab: compare, overlay, diff, note and fork the runs under the runs folder."""
