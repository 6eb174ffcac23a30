"""linalg ops (reference)."""
__all__ = []
