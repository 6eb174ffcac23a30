# _checks.pxi — the memory-safety checks every wrapper runs before calling C.
# They raise TypeError/ValueError naming the argument; they never coerce.

cdef inline int _kind(cnp.ndarray a, str name) except -1:
    """0 for float32, 1 for float64; TypeError for any other dtype."""
    cdef int t = cnp.PyArray_TYPE(a)
    if not cnp.PyArray_ISNOTSWAPPED(a):
        # Memory-safe, but C would read byte-swapped numbers as garbage.
        raise TypeError(f"{name}: expected native byte order, got dtype {a.dtype.str}")
    if t == cnp.NPY_FLOAT32:
        return 0
    if t == cnp.NPY_FLOAT64:
        return 1
    raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {a.dtype}")


cdef inline int _same_kind(cnp.ndarray a, str name, int kind) except -1:
    if _kind(a, name) != kind:
        raise TypeError(f"{name}: expected dtype {'float64' if kind else 'float32'}, got {a.dtype}")
    return kind


cdef inline int _contig(cnp.ndarray a, str name) except -1:
    """A C-contiguous array C may load from: its data pointer aligned to the item size (NumPy
    allows unaligned arrays, e.g. np.frombuffer at an odd offset; C may not read them)."""
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        raise ValueError(f"{name}: expected a C-contiguous array")
    if not cnp.PyArray_ISALIGNED(a):
        raise ValueError(f"{name}: expected an array aligned to its {a.itemsize}-byte items, got data at "
                         f"address {<size_t>cnp.PyArray_DATA(a):#x} (np.array(a) makes an aligned copy)")
    return 0


cdef inline int _writable(cnp.ndarray a, str name) except -1:
    if not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{name}: array is read-only")
    return 0


cdef inline int _same_size(cnp.ndarray a, str name, int64_t n) except -1:
    if cnp.PyArray_SIZE(a) != n:
        raise ValueError(f"{name}: expected {n} elements, got {cnp.PyArray_SIZE(a)}")
    return 0


cdef inline int _out_array(cnp.ndarray a, str name, int kind, int64_t n) except -1:
    """An output: right dtype, contiguous, writable, n elements."""
    _same_kind(a, name, kind)
    _contig(a, name)
    _writable(a, name)
    _same_size(a, name, n)
    return 0


cdef inline int _in_array(cnp.ndarray a, str name, int kind, int64_t n) except -1:
    """A contiguous input: right dtype, n elements."""
    _same_kind(a, name, kind)
    _contig(a, name)
    _same_size(a, name, n)
    return 0


# --- overlap of outputs with inputs ----------------------------------------------------------

cdef inline bint _byte_span(object a, size_t *lo, size_t *hi):
    """[lo, hi): the bytes an ndarray can touch, whatever its strides; False if empty."""
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int d
    cdef Py_ssize_t n, s
    cdef size_t base = <size_t>cnp.PyArray_DATA(arr)
    cdef size_t down = 0, up = <size_t>cnp.PyArray_ITEMSIZE(arr)
    if cnp.PyArray_SIZE(arr) == 0:
        return False
    for d in range(cnp.PyArray_NDIM(arr)):
        n = cnp.PyArray_DIM(arr, d)
        s = cnp.PyArray_STRIDE(arr, d)
        if s < 0:
            down += <size_t>(-s) * <size_t>(n - 1)
        else:
            up += <size_t>s * <size_t>(n - 1)
    lo[0] = base - down
    hi[0] = base + up
    return True



cdef object _shares_memory = None


cdef int _apart(object out, str name, tuple others) except -1:
    """``out`` (an ndarray, or None) shares no memory with any array of ``others``, given as
    (name, array or None, name, array or None, ...): "<name>: must not overlap <other>".
    Exact: the byte ranges decide when they are apart (the usual case, no Python call); when
    they meet, numpy.shares_memory decides (interleaved views that never touch are fine)."""
    global _shares_memory
    cdef size_t lo, hi, lo2, hi2
    cdef Py_ssize_t i
    cdef object b
    if out is None:
        return 0
    if not isinstance(out, cnp.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(out).__name__}")
    if not _byte_span(out, &lo, &hi):
        return 0
    for i in range(0, len(others), 2):
        b = others[i + 1]
        if b is not None and not isinstance(b, cnp.ndarray):
            raise TypeError(f"{others[i]}: expected a numpy.ndarray, got {type(b).__name__}")
        if b is None or not _byte_span(b, &lo2, &hi2) or not (lo < hi2 and lo2 < hi):
            continue
        if _shares_memory is None:
            import numpy
            _shares_memory = numpy.shares_memory
        if _shares_memory(out, b):
            raise ValueError(f"{name}: must not overlap {others[i]}")
    return 0
