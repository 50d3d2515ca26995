"""Benchmarks and the chaos harness: scripts that print figures (README, "Performance and reliability")."""
