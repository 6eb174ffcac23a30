# .ci/lib.sh — steps shared by the scripts that test a special build in a throw-away copy of the
# tree (serial.sh, sanitize.sh). Sourced, not run; they set ROOT, PY and WORK first.

# Copy the sources of $ROOT into $WORK: no build outputs, caches or virtual environments, so the
# normal in-place build of this checkout stays untouched.
copy_sources() {
    tar -C "$ROOT" --exclude=./build --exclude='./.venv*' --exclude='*.so' --exclude='*.o' \
        --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis --exclude=.git \
        --exclude=./fastnn/_core.c -cf - . | tar -C "$WORK" -xf -
}

# build_copy VAR=value... — build the extension in $WORK with those variables set; on failure
# print the build log and exit.
build_copy() {
    (cd "$WORK" && env "$@" "$PY" setup.py build_ext --inplace -q >"$WORK/build.log" 2>&1) || {
        cat "$WORK/build.log" >&2
        exit 1
    }
}

# has_test_paths ARGS... — true when an argument is not an option (a test file or id was given).
has_test_paths() {
    local a
    for a in "$@"; do case "$a" in -*) ;; *) return 0 ;; esac; done
    return 1
}
