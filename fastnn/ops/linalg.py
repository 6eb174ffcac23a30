"""linalg ops (ops)."""
__all__ = []
