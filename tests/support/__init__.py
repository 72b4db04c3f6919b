"""Test helpers shared by several test packages (fixtures live in plain modules, imported by conftests)."""
