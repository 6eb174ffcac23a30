"""fastnn.nn.init fills Parameters and arrays in place with PyTorch's formulas: gains, fan
in/out (including conv-shaped weights), bounds and moments of each distribution, seeding
through fastnn.manual_seed, and clear errors for bad arguments."""
import math
import warnings

import numpy as np
import pytest

import fastnn
from fastnn.nn import Parameter, init

N_OUT, N_IN = 400, 300  # 120 000 draws: 5-sigma moment checks are tight enough


def _moment_checks(a, mean, std):
    n = a.size
    assert abs(a.mean() - mean) < 5 * std / math.sqrt(n)
    # The sample variance's standard error is ≈ std²·√(2/n) for normal, less for uniform.
    assert abs(a.var() - std**2) < 5 * std**2 * math.sqrt(2 / n)


def test_calculate_gain_values():
    for name in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                 "conv_transpose3d", "sigmoid"):
        assert init.calculate_gain(name) == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("selu") == pytest.approx(0.75)
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="nonlinearity: expected one of .*got 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="param: expected a number"):
        init.calculate_gain("leaky_relu", "0.1")
    with pytest.raises(ValueError, match="param: expected a number"):
        init.calculate_gain("leaky_relu", True)


def test_uniform_and_normal_moments(dtype):
    a = np.empty((N_OUT, N_IN), dtype)
    assert init.uniform_(a, -2.0, 3.0) is a
    assert a.min() >= -2 and a.max() <= 3 and a.dtype == dtype
    _moment_checks(a.astype(np.float64), 0.5, 5 / math.sqrt(12))
    assert init.normal_(a, 1.5, 0.5) is a
    _moment_checks(a.astype(np.float64), 1.5, 0.5)


def test_constant_zeros_ones():
    p = Parameter(np.full((3, 4), 7.0, np.float32))
    data = p.data
    assert init.zeros_(p) is p
    assert p.data is data and np.all(p.data == 0)
    init.ones_(p)
    assert np.all(p.data == 1)
    init.constant_(p, -0.25)
    assert np.all(p.data == -0.25)


def test_xavier_bounds_and_std():
    w = np.empty((N_OUT, N_IN))
    gain = init.calculate_gain("tanh")
    init.xavier_uniform_(w, gain=gain)
    bound = gain * math.sqrt(6 / (N_IN + N_OUT))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    _moment_checks(w, 0.0, bound / math.sqrt(3))
    init.xavier_normal_(w)
    _moment_checks(w, 0.0, math.sqrt(2 / (N_IN + N_OUT)))


def test_kaiming_uniform_default_of_linear_layers():
    # kaiming_uniform_(a=√5) is PyTorch's Linear init: bound = 1/√fan_in.
    w = np.empty((N_OUT, N_IN))
    init.kaiming_uniform_(w, a=math.sqrt(5))
    bound = 1 / math.sqrt(N_IN)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    init.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / N_OUT)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound


def test_kaiming_normal_std_and_conv_fans():
    w = np.empty((N_OUT, N_IN))
    init.kaiming_normal_(w, nonlinearity="relu")
    _moment_checks(w, 0.0, math.sqrt(2 / N_IN))
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    _moment_checks(w, 0.0, math.sqrt(2 / N_OUT))
    conv = np.empty((64, 32, 5, 5))  # fan_in = 32·25, fan_out = 64·25
    init.kaiming_normal_(conv, mode="fan_in", nonlinearity="tanh")
    _moment_checks(conv, 0.0, (5 / 3) / math.sqrt(32 * 25))
    init.xavier_uniform_(conv)
    assert np.abs(conv).max() <= math.sqrt(6 / (32 * 25 + 64 * 25))


def test_reproducible_through_manual_seed_and_explicit_generator():
    a, b = np.empty((5, 7), np.float32), np.empty((5, 7), np.float32)
    fastnn.manual_seed(3)
    init.kaiming_uniform_(a)
    fastnn.manual_seed(3)
    init.kaiming_uniform_(b)
    np.testing.assert_array_equal(a, b)
    init.normal_(a, generator=np.random.default_rng(1))
    init.normal_(b, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)


def test_parameter_in_place_keeps_storage_and_dtype():
    p = Parameter(np.zeros((6, 4), np.float64))
    data = p.data
    assert init.xavier_normal_(p) is p
    assert p.data is data and p.dtype == np.float64 and np.any(p.data != 0)


def test_bad_arguments():
    with pytest.raises(TypeError, match="tensor: expected a fastnn Parameter or a numpy.ndarray, got list"):
        init.zeros_([1.0, 2.0])
    with pytest.raises(TypeError, match="tensor: expected a floating-point array, got dtype int64"):
        init.ones_(np.zeros(3, np.int64))
    ro = np.zeros((3, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="tensor: array is read-only"):
        init.normal_(ro)
    with pytest.raises(ValueError, match=r"tensor: fan in and fan out can not be computed for an array with "
                                         r"fewer than 2 dimensions, got shape \(5,\)"):
        init.xavier_uniform_(np.zeros(5))
    with pytest.raises(ValueError, match="fan in and fan out"):
        init.kaiming_normal_(np.zeros(5))
    with pytest.raises(ValueError, match="mode: expected one of 'fan_in', 'fan_out', got 'fan_avg'"):
        init.kaiming_uniform_(np.zeros((2, 2)), mode="fan_avg")
    with pytest.raises(ValueError, match="nonlinearity: expected one of"):
        init.kaiming_normal_(np.zeros((2, 2)), nonlinearity="swish")
    with pytest.raises(TypeError, match="a: expected a real number"):
        init.kaiming_uniform_(np.zeros((2, 2)), a="1")
    with pytest.raises(ValueError, match="b: expected a value >= 2.0, got 1.0"):
        init.uniform_(np.zeros(3), 2.0, 1.0)
    with pytest.raises(ValueError, match="std: expected a value >= 0.0"):
        init.normal_(np.zeros(3), std=-1)
    with pytest.raises(TypeError, match="val: expected a real number, got str"):
        init.constant_(np.zeros(3), "1")
    with pytest.raises(TypeError, match="generator: expected a numpy.random.Generator"):
        init.uniform_(np.zeros(3), generator=42)
    with pytest.raises(ValueError, match="gain: expected a finite number"):
        init.xavier_uniform_(np.zeros((2, 2)), gain=float("nan"))


def test_zero_element_arrays_are_a_no_op():
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(np.zeros((0, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        init.xavier_uniform_(np.zeros((0, 3)))
        init.uniform_(np.zeros((0, 3)))
