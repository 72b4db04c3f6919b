"""Example apps built with the bff kit; not installed with it (run them from the repository root)."""
