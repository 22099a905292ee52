"""Helpers shared by every part of ``rmlib``: argument validation (``validation``)."""
