"""Sensors, readings and excursions."""
