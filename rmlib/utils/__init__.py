"""Helpers shared by every part of ``rmlib``: argument validation (``validation``) and the optional extras (``extras``)."""
