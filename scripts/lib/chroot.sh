# Sourced by the package tests (scripts/test-package, scripts/test-package-office): the cached
# tarball of a throwaway Debian chroot (mmdebstrap minbase + adduser and pcscd, the packages'
# dependencies), built from the host's apt sources (about 2 minutes) and kept for 7 days in
# ${PINTU_CACHE_DIR:-~/.cache/pintu}. Expects $sudo, $arch and fail() from the caller; sets $base.
chroot_base() {
  . /etc/os-release
  suite=${VERSION_CODENAME:?cannot tell the Debian release from /etc/os-release}
  local cache_dir=${PINTU_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pintu}
  base="$cache_dir/$suite-minbase-pintu-deps-$arch.tar"
  mkdir -p "$cache_dir"
  if [ ! -s "$base" ] || [ -n "$(find "$base" -mtime +7)" ]; then
    local sources=() f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
      [ -s "$f" ] && grep -qE '^[[:space:]]*(deb |Types:)' "$f" && sources+=("$f")
    done
    [ ${#sources[@]} -gt 0 ] || fail "no apt sources on this host for mmdebstrap"
    echo "==> building the chroot base ($suite minbase + adduser pcscd) into $base"
    $sudo timeout 900 mmdebstrap --quiet --variant=minbase --include=adduser,pcscd,libpcsclite1 \
      --format=tar "$suite" "$base.tmp" "${sources[@]}" || fail "mmdebstrap failed"
    $sudo mv "$base.tmp" "$base"
  fi
}
