"""optim ops (ops)."""
__all__ = []
