"""losses ops (reference)."""
__all__ = []
