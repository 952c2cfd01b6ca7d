"""Helpers that build tiny models offline, for tests, smoke jobs and benchmarks."""

from __future__ import annotations
