# Where this machine keeps a shared library: sourced by make-bundle.sh (here) and field-run.sh (on the
# GPU machine, from the bundle).

# The loader cache's listing (ldconfig is often in /sbin, off a plain PATH); nothing where there is none.
ldconfig_p() {
    local l
    for l in ldconfig /sbin/ldconfig /usr/sbin/ldconfig; do
        if command -v "$l" >/dev/null 2>&1; then "$l" -p 2>/dev/null || true; return 0; fi
    done
}

# A shared library's path by soname in the loader's cache; empty where it has none.
cached_lib() {
    local soname=${1//./\\.}  # the name as a regular expression: its dots and pluses (libstdc++) literal
    soname=${soname//+/\\+}
    ldconfig_p | sed -n -E "s/^[[:space:]]*$soname \(libc6,x86-64[^)]*\) => (.*)/\1/p" | head -n 1
}

# A shared library's path by soname, from the loader's cache or the usual folders; empty where there is none.
find_lib() {
    local p d
    p=$(cached_lib "$1")
    if [ -z "$p" ]; then
        for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /usr/lib /usr/local/lib /lib; do
            [ -e "$d/$1" ] && { p=$d/$1; break; }
        done
    fi
    echo "$p"
}
