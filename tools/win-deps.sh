#!/usr/bin/env bash
# Installs what the Windows cross-build needs and is missing (mingw-w64, Wine),
# then cross-builds libevent, OpenSSL and inih for Windows x64, static, from
# Debian's source packages into a cache directory outside the checkout:
#   ${BATON_WIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/baton-win}/<key>
# where <key> names the versions and the compiler; a prefix whose key still
# matches is reused as it is.  Prints the prefix's path as its last line.
# Usage: tools/win-deps.sh          (as root, or with sudo, for apt)
# Env:   BATON_WIN_CACHE=DIR   cache root
#        BATON_WIN_REBUILD=1   rebuild even if the prefix exists
# See docs/windows.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${BATON_WIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/baton-win}
jobs=$(nproc)
export DEBIAN_FRONTEND=noninteractive

# Progress and timings go to stderr (fd 3, out of reach of the steps'
# redirections), so that stdout carries the prefix alone.
exec 3>&2
step() {
    local start=$SECONDS
    echo "baton-win: $1" >&3
    shift
    "$@"
    echo "baton-win:   $((SECONDS - start)) s" >&3
}
die() { echo "baton-win: $*" >&3; exit 1; }
# quiet LOG CMD...: runs CMD with its output in LOG, shown (the end) if it fails.
quiet() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 || { tail -40 "$log" >&3; return 1; }
}

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    sudo=(die "need root (or sudo) for apt:")
fi

# --- 1. packages ------------------------------------------------------------
# wine64 only recommends wine, which provides /usr/bin/wine: name both.
# Without recommends Wine still runs console programs (no X, no sound).
pkgs=(gcc-mingw-w64-x86-64 wine wine64 cmake ninja-build pkg-config make perl
      dpkg-dev xz-utils python3)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The versions below are read from apt's binary indexes: a machine that
# never ran apt-get update has none.
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
if [ ${#missing[@]} -gt 0 ] || [ -z "$(candidate libssl-dev)" ] \
        || [ "$(candidate libssl-dev)" = "(none)" ]; then
    step "apt-get update" "${sudo[@]}" apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}" \
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. versions and cache key ---------------------------------------------
# libevent: bookworm-security (Debian's CVE patches applied by apt-get source).
# OpenSSL: the upstream version Debian ships to Linux (libssl-dev's
# candidate), built from its orig tarball: Debian's patches are for Linux.
# inih: trixie's (bookworm's tarballs are missing on the mirror).
gcc_ver=$(dpkg-query -W -f='${Version}' gcc-mingw-w64-x86-64)
libevent_ver=$(candidate libevent-dev)
openssl_deb=$(candidate libssl-dev)
openssl_ver=${openssl_deb%%-*}
[ -n "$libevent_ver" ] && [ -n "$openssl_ver" ] || die "apt knows no libevent-dev or libssl-dev"
# The recipe's revision: bump it when a build option below changes.
recipe=3
key_base="r${recipe}+mingw-gcc-${gcc_ver}+libevent-${libevent_ver}+openssl-${openssl_ver}"
key_base=${key_base//\~/_}
# inih's version is known only from trixie's source index, which exists only
# while this script fetches (step 3): a prefix with any inih version is
# reused until another version changes (BATON_WIN_REBUILD=1 forces it).
if [ -z "${BATON_WIN_REBUILD:-}" ]; then
    for d in "$cache/$key_base"+inih-*; do
        if [ -f "$d/.done" ]; then
            echo "baton-win: dependencies up to date: $d" >&3
            echo "$d"
            exit 0
        fi
    done
fi

# --- 3. sources ---------------------------------------------------------------
# apt-get source needs deb-src entries: add our own beside the machine's
# (same mirrors), and remove them on exit, leaving apt as it was.
srcfile=/etc/apt/sources.list.d/baton-win-src.sources
# The machine's Debian mirror, and its security mirror: deb822 or one-line.
mirror_for() {
    local suite=$1
    # (a missing file is no error here)
    {
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v s="$suite" '
            /^$/ { if (ok && uri != "") { print uri; exit } ok = 0; uri = ""; next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
            END { if (ok && uri != "") print uri }' || true
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk -v s="$suite" '
            $1 == "deb" { u = $2; x = $3; if (u ~ /^\[/) { u = $3; x = $4 } if (x == s) print u }' || true
    } | head -1
}
main_uri=$(mirror_for bookworm)
sec_uri=$(mirror_for bookworm-security)
[ -n "$main_uri" ] && [ -n "$sec_uri" ] || die "no bookworm and bookworm-security entries in apt's sources"
cleanup_apt() {
    if [ -f "$srcfile" ]; then
        "${sudo[@]}" rm -f "$srcfile"
        "${sudo[@]}" apt-get update -qq || echo "baton-win: apt-get update failed after removing $srcfile" >&2
    fi
}
trap cleanup_apt EXIT
"${sudo[@]}" tee "$srcfile" >/dev/null <<EOF
# Added by baton's tools/win-deps.sh while it fetches sources; removed on exit.
Types: deb-src
URIs: $main_uri
Suites: bookworm trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: $sec_uri
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
step "apt-get update (with deb-src)" "${sudo[@]}" apt-get update -qq

work="$cache/work"
rm -rf "$work"
mkdir -p "$work/src"
cd "$work/src"
step "source libevent $libevent_ver" quiet "$work/fetch.log" apt-get source "libevent=$libevent_ver" \
    || die "apt-get source libevent=$libevent_ver failed"
step "source libinih/trixie" quiet "$work/fetch.log" apt-get source libinih/trixie \
    || die "apt-get source libinih/trixie failed"
# The openssl .dsc may be missing on the mirror while the orig tarball is
# there: apt-get then fails after fetching the tarball, which is all we use.
step "source openssl $openssl_deb (orig tarball)" \
    apt-get source --download-only "openssl=$openssl_deb" >"$work/fetch.log" 2>&1 || true
[ -f "openssl_${openssl_ver}.orig.tar.gz" ] || die "could not fetch openssl_${openssl_ver}.orig.tar.gz"
cleanup_apt
trap - EXIT

inih_dir=$(ls -d libinih-*/ | head -1)
inih_ver=${inih_dir#libinih-}
inih_ver=${inih_ver%/}
libevent_dir=$(ls -d libevent-*/ | head -1)
prefix="$cache/$key_base+inih-$inih_ver"
rm -rf "$prefix"
mkdir -p "$prefix"
step "unpacking openssl" tar xzf "openssl_${openssl_ver}.orig.tar.gz"

# --- 4. builds (low priority: the machine is shared) -------------------------
toolchain="$root/cmake/mingw-w64.cmake"
export BATON_WIN_DEPS="$prefix"
# --libdir=lib: the mingw64 target would install into lib64/, where
# FindOpenSSL does not look for Windows.
# Where a Windows OpenSSL reads openssl.cnf, engines and providers must be
# writable by administrators only (CVE-2019-1552), never the build's paths
# (they would be \root\.cache\... on the current drive, which any user may
# create).  Cross-configured, OpenSSL's Configure takes "C:/..." for a
# relative path and puts the prefix in front, so the three directories are
# given to make, which compiles them in (LIB_CPPFLAGS), and checked.
win_ssl="C:/Program Files/Common Files/SSL"
(
    cd "openssl-$openssl_ver"
    step "openssl configure" quiet "$work/openssl.log" ./Configure mingw64 no-shared no-tests \
        --cross-compile-prefix=x86_64-w64-mingw32- --prefix="$prefix" --libdir=lib \
        || die "openssl configure failed"
    step "openssl build" quiet "$work/openssl.log" nice -n 10 make -j"$jobs" build_libs \
        OPENSSLDIR="$win_ssl" ENGINESDIR="$win_ssl/engines-3" MODULESDIR="$win_ssl/ossl-modules" \
        || die "openssl build failed"
    grep -qaF "$win_ssl/ossl-modules" libcrypto.a && ! grep -qaF "$prefix" libcrypto.a \
        || die "OpenSSL's directories are not $win_ssl"
    step "openssl install" quiet "$work/openssl.log" make install_dev || die "openssl install failed"
)
step "libevent configure" quiet "$work/libevent.log" cmake -S "$libevent_dir" -B "$work/libevent" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DBATON_WINE=BATON_WINE-NOTFOUND \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DEVENT__LIBRARY_TYPE=STATIC -DOPENSSL_ROOT_DIR="$prefix" -DOPENSSL_USE_STATIC_LIBS=TRUE \
    -DEVENT__DISABLE_TESTS=ON -DEVENT__DISABLE_SAMPLES=ON -DEVENT__DISABLE_BENCHMARK=ON \
    -DEVENT__DISABLE_REGRESS=ON || die "libevent configure failed"
step "libevent build" quiet "$work/libevent.log" nice -n 10 cmake --build "$work/libevent" -j"$jobs" \
    || die "libevent build failed"
quiet "$work/libevent.log" cmake --install "$work/libevent" || die "libevent install failed"
# inih is one C file.
inih_flags=()
build_inih() {
    x86_64-w64-mingw32-gcc -O2 "${inih_flags[@]}" -c "$inih_dir/ini.c" -o "$work/ini.o"
    x86_64-w64-mingw32-ar rcs "$prefix/lib/libinih.a" "$work/ini.o"
    install -m 644 "$inih_dir/ini.h" "$prefix/include/ini.h"
    cat >"$prefix/lib/pkgconfig/inih.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: inih
Description: simple .INI file parser (baton's Windows cross-build)
Version: $inih_ver
Libs: -L\${libdir} -linih
Cflags: -I\${includedir} ${inih_flags[*]}
EOF
}
step "inih build" build_inih

rm -rf "$work"
touch "$prefix/.done"
echo "baton-win: dependencies ready (${SECONDS} s in all)" >&3
echo "$prefix"
