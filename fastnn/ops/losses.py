"""losses ops (ops)."""
__all__ = []
