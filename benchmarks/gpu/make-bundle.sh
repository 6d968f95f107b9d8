#!/usr/bin/env bash
# Assembles the GPU field-run bundle (`make gpu-bundle`): a folder to copy to a machine with a GPU but
# possibly without Swift, OpenBLAS, the OpenCL ICD loader or CLBlast, and run there with
# `BUNDLE/field-run.sh OUTDIR` (see benchmarks/gpu/field-run.sh and README.md, "GPU field run").
#
#   benchmarks/gpu/make-bundle.sh BINDIR BUNDLE [MAX_MIB]
#
# BINDIR holds `kiln` and `kiln-bench` built with --static-swift-stdlib. The files mirror `make install`:
#   bin/kiln, bin/kiln-bench          the binaries (debug info stripped, symbols kept)
#   lib/                              what they link or dlopen that a bare machine may lack: OpenBLAS (the real
#                                     file behind Debian's alternatives links, under its soname) and its Fortran
#                                     runtime, libpng, zlib, the OpenCL ICD loader, CLBlast
#   lib/fallback/                     libstdc++ and libgcc_s: field-run.sh uses them only where the machine has
#                                     none, or one too old for the bundled libraries (GLIBCXX_NEEDED names the
#                                     newest symbol version they need)
#   share/kiln/mnist/                 the bundled MNIST, where an installed kiln looks
# bin/ and lib/ (~200 MiB: each binary carries Foundation and ICU's data) travel as payload.tar.xz, one
# xz stream with a dictionary that spans both binaries, so the second costs little; field-run.sh unpacks
# it beside itself (or into a temporary folder) with the machine's xz or the bundle's own (unxz/). Also:
#   field-run.sh, field-summary.py    the run and its summary.md's figures
#   BUILD_INFO                        the commit and date of the build
#   GLIBC_NEEDED                      the newest glibc symbol version any bundled file needs (glibc is the
#                                     machine's own; field-run.sh checks it first)
# Every dependency outside glibc must resolve inside the bundle (checked with ldd), and the bundle must
# stay under MAX_MIB (64): it fails otherwise.
set -euo pipefail

die() { echo "make-bundle: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: make-bundle.sh BINDIR BUNDLE [MAX_MIB]"
bindir=$1 bundle=$2 max_mib=${3:-64}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
for b in kiln kiln-bench; do [ -x "$bindir/$b" ] || die "no $bindir/$b: build with swift build -c release --static-swift-stdlib first"; done
command -v ldd >/dev/null || die "ldd is needed to find the libraries to bundle"

command -v xz >/dev/null || die "xz is needed to pack the binaries (apt-get install xz-utils)"
case "$bundle" in ""|/) die "refusing to use $bundle as the bundle folder" ;; esac
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib/fallback" "$bundle/share/kiln/mnist" "$bundle/unxz"
bundle=$(cd "$bundle" && pwd)
for b in kiln kiln-bench; do
    cp "$bindir/$b" "$bundle/bin/$b"
    if command -v strip >/dev/null; then strip --strip-debug "$bundle/bin/$b"; fi
done
cp "$root"/Data/mnist/*.gz "$bundle/share/kiln/mnist/"
cp "$here/field-run.sh" "$here/find-lib.sh" "$here/field-summary.py" "$bundle/"
chmod 755 "$bundle/field-run.sh"
echo "kiln $(git -C "$root" describe --always --dirty 2>/dev/null || echo '(not a git checkout)'), bundled $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n)" > "$bundle/BUILD_INFO"

# glibc and the dynamic loader are the machine's own; libstdc++ and libgcc_s are fallbacks.
is_glibc() {
    case "$1" in
        linux-vdso.so.*|ld-linux*|libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libresolv.so.*|libutil.so.*) return 0 ;;
        *) return 1 ;;
    esac
}
# `soname => /path` lines of ldd: copies each library (the real file, under the soname) into lib/ or lib/fallback/.
copy_deps() {
    local file=$1 line name path
    while IFS= read -r line; do
        case "$line" in *"=> not found"*) die "$file needs ${line%% *}, which is not installed here (make deps)";; esac
        [[ "$line" == *" => /"* ]] || continue
        name=$(echo "$line" | sed -E 's/^[[:space:]]*([^ ]+) => .*/\1/')
        path=$(echo "$line" | sed -E 's/.* => ([^ ]+) \(.*/\1/')
        is_glibc "$name" && continue
        case "$name" in
            libstdc++.so.*|libgcc_s.so.*) [ -e "$bundle/lib/fallback/$name" ] || cp -L "$path" "$bundle/lib/fallback/$name" ;;
            *) [ -e "$bundle/lib/$name" ] || cp -L "$path" "$bundle/lib/$name" ;;
        esac
    done < <(ldd "$file")
}
# shellcheck source=find-lib.sh
source "$here/find-lib.sh"

for b in kiln kiln-bench; do copy_deps "$bindir/$b"; done
# Opened with dlopen at run time, so ldd of the binaries does not list them.
for soname in libOpenCL.so.1 libclblast.so.1; do
    path=$(find_lib "$soname")
    [ -n "$path" ] || die "cannot find $soname here (make deps installs it)"
    cp -L "$path" "$bundle/lib/$soname"
    copy_deps "$path"
done
# Dependencies of dependencies (ldd lists the whole closure, but a copied file may differ from what it saw).
for lib in "$bundle"/lib/*.so*; do copy_deps "$lib"; done
if command -v strip >/dev/null; then
    for lib in "$bundle"/lib/*.so* "$bundle"/lib/fallback/*.so*; do strip --strip-debug "$lib" 2>/dev/null || true; done
fi

# The newest symbol versions needed: of glibc (the machine's) and of libstdc++ (the fallback's threshold).
newest() { grep -a -o -h -E "$1_[0-9]+(\.[0-9]+)*" "$@" 2>/dev/null | sed "s/^$1_//" | sort -t. -k1,1n -k2,2n -k3,3n -u | tail -n 1; }
versions() {
    local tag=$1; shift
    if command -v objdump >/dev/null; then
        objdump -T "$@" 2>/dev/null | grep -o -E "\b${tag}_[0-9]+(\.[0-9]+)*\b" | sed "s/^${tag}_//" | sort -t. -k1,1n -k2,2n -k3,3n -u | tail -n 1
    else
        newest "$tag" "$@"
    fi
}
files=("$bundle"/bin/kiln "$bundle"/bin/kiln-bench "$bundle"/lib/*.so*)
echo "$(versions GLIBC "${files[@]}")" > "$bundle/GLIBC_NEEDED"
echo "$(versions GLIBCXX "${files[@]}")" > "$bundle/lib/fallback/GLIBCXX_NEEDED"

# Every dependency outside glibc resolves inside the bundle.
unresolved=""
for f in "${files[@]}"; do
    while IFS= read -r line; do
        [[ "$line" == *" => "* ]] || continue
        name=$(echo "$line" | sed -E 's/^[[:space:]]*([^ ]+) => .*/\1/')
        is_glibc "$name" && continue
        case "$line" in *" => $bundle/lib/"*) ;; *) unresolved+="  $(basename "$f"): $line"$'\n' ;; esac
    done < <(LD_LIBRARY_PATH="$bundle/lib:$bundle/lib/fallback" ldd "$f")
done
[ -z "$unresolved" ] || die "dependencies outside the bundle:"$'\n'"$unresolved"
listing=$(cd "$bundle" && ls -l bin lib lib/fallback | sed 's/^/  /')
unpacked=$(du -sh "$bundle/bin" "$bundle/lib" | cut -f1 | tr '\n' ' ')

# Pack bin/ and lib/; the bundle's own xz (and liblzma) unpacks them where the machine has no xz.
echo "gpu-bundle: packing bin/ and lib/ (${unpacked% }) into payload.tar.xz (a minute or two)"
(cd "$bundle" && tar -cf - bin lib | xz --lzma2=preset=9,dict=192MiB -T1 > payload.tar.xz.tmp && mv payload.tar.xz.tmp payload.tar.xz)
rm -rf "$bundle/bin" "$bundle/lib"
cp -L "$(command -v xz)" "$bundle/unxz/xz"
while IFS= read -r line; do
    [[ "$line" == *" => /"* ]] || continue
    name=$(echo "$line" | sed -E 's/^[[:space:]]*([^ ]+) => .*/\1/')
    is_glibc "$name" || cp -L "$(echo "$line" | sed -E 's/.* => ([^ ]+) \(.*/\1/')" "$bundle/unxz/$name"
done < <(ldd "$(command -v xz)")

kib=$(du -sk "$bundle" | cut -f1)
echo "$listing"
echo "gpu-bundle: $(du -sh "$bundle" | cut -f1) in $bundle (limit ${max_mib} MiB); needs glibc $(cat "$bundle/GLIBC_NEEDED") or newer"
[ "$kib" -le $((max_mib * 1024)) ] || die "the bundle is $((kib / 1024)) MiB, over the ${max_mib} MiB limit"
