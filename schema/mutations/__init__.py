"""Mutations, one module per domain; each returns a payload with `userErrors`."""
