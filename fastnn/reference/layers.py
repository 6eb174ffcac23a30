"""layers ops (reference)."""
__all__ = []
