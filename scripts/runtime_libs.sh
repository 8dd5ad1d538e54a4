#!/usr/bin/env bash
# Copies the shared libraries that BINARY... load (ldd's closure) into DEST_ROOT, at the paths the
# dynamic loader finds them at, for the container image's runtime stage (Dockerfile). Run in the
# build stage, where the libraries are installed; the runtime stage copies DEST_ROOT over its base.
#
#   scripts/runtime_libs.sh DEST_ROOT BASE_PACKAGES BINARY...
#
# BASE_PACKAGES: a file with the names of the packages of the runtime stage's base image, one a line
# (`dpkg-query -W -f='${Package}\n'` there). Their libraries (glibc, libstdc++, zlib, ...) are not
# copied: the base has them, with its own dpkg record, and glibc must never be mixed with a copy.
#
# Why not apt packages: libtorch1.13 depends on OpenCV, FFmpeg, GDAL, Qt and (through
# libopencv-core -> libglx0 -> libglx-mesa0 -> libgl1-mesa-dri) on libLLVM-15, ~1.2 GB installed.
# libtorch_cpu.so NEEDs OpenCV and FFmpeg, so those libraries must be loadable, but the Mesa drivers,
# LLVM, the GDAL/PROJ data, fonts and docs that the packages also bring are never loaded.
#
# DEST_ROOT/usr/share/doc/optower/runtime-libraries.txt lists each copied library with the Debian
# package and version it came from (the image has no dpkg record of them: scan that list).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 DEST_ROOT BASE_PACKAGES BINARY..." >&2; exit 2; }
dest=$1 base_packages=$2; shift 2
[ -s "$base_packages" ] || { echo "runtime_libs: $base_packages is empty or missing" >&2; exit 2; }
manifest_dir=$dest/usr/share/doc/optower
mkdir -p "$manifest_dir"
manifest=$manifest_dir/runtime-libraries.txt
: > "$manifest.tmp"

# "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)": the path the loader resolved.
libs=$(ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u)
if ldd "$@" | grep -q "not found"; then
  ldd "$@" | grep "not found" >&2
  echo "runtime_libs: a library is missing in the build stage" >&2
  exit 1
fi

# One dpkg -S for all of them (one per library takes minutes): "pkg[, pkg][:arch]: /path". dpkg
# records some files under /lib and some under /usr/lib (merged /usr): ask for both spellings.
declare -A real_of owner version_of
queries=()
for lib in $libs; do
  real=$(readlink -f "$lib")
  real_of[$lib]=$real
  queries+=("$real" "${real#/usr}" "$lib")
done
while IFS= read -r line; do
  pkg=${line%%: *}; pkg=${pkg%%,*}; pkg=${pkg%%:*}
  owner[${line#*: }]=$pkg
done < <(dpkg -S "${queries[@]}" 2>/dev/null | grep -v '^diversion')
while IFS=$'\t' read -r pkg version; do
  version_of[$pkg]=$version
done < <(dpkg-query -W -f='${Package}\t${Version}\n' $(printf '%s\n' "${owner[@]}" | sort -u))

copied=0 skipped=0
for lib in $libs; do
  real=${real_of[$lib]}
  pkg=${owner[$real]:-${owner[${real#/usr}]:-${owner[$lib]:-}}}
  [ -n "$pkg" ] || { echo "runtime_libs: $lib ($real) belongs to no package" >&2; exit 1; }
  if grep -qx "$pkg" "$base_packages"; then
    skipped=$((skipped + 1))
    continue
  fi
  # The loader looks the soname up in the directory it resolved; /lib is a symlink to usr/lib on
  # Debian 12 (merged /usr), so copy to the real directory lest a copied /lib replace the symlink.
  dir=$(readlink -f "$(dirname "$lib")")
  mkdir -p "$dest$dir"
  cp -L "$lib" "$dest$dir/$(basename "$lib")"
  printf '%s\t%s\t%s\n' "$dir/$(basename "$lib")" "$pkg" "${version_of[$pkg]}" >> "$manifest.tmp"
  copied=$((copied + 1))
done
sort "$manifest.tmp" > "$manifest"
rm -f "$manifest.tmp"
echo "runtime_libs: copied $copied libraries ($(du -sh "$dest" | cut -f1)), skipped $skipped of the base image" >&2
