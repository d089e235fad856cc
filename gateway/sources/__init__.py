"""Intakes: one module per kind of source, each building `Source` objects from config."""
