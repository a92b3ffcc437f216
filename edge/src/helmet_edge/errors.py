"""Errors of the locker service."""

from __future__ import annotations


class EdgeError(Exception):
    """Root of every helmet_edge error."""


class ConfigError(EdgeError, ValueError):
    """A configuration file or pin profile that cannot be used as it is."""
