"""Benchmarks. Each prints figures and, with --json, one JSON object as its last line."""
