"""fastnn.bench — speed comparisons against NumPy (and PyTorch/JAX when installed), as ratios."""
