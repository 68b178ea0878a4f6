"""Persistence: the one place that reads and writes the service's tables."""
