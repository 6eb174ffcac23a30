"""layers ops (ops)."""
__all__ = []
