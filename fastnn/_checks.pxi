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
