"""Audit storage (SQLAlchemy 2.x), campaigns and statistics. No UI code, no torch."""
