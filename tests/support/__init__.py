"""Test helpers that start real processes (never mocks of our own code)."""
