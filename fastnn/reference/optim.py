"""optim ops (reference)."""
__all__ = []
