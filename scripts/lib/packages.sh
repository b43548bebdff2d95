# Sourced by the scripts: installs missing Debian packages with apt-get (as root, or via sudo).
ensure_packages() {
  local missing=() p sudo=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing: ${missing[*]}"
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found. Install Rust first (https://rustup.rs), then open a new shell." >&2
    exit 1
  fi
}

# Run-time packages of the test suite, for scripts/test to install with the build packages:
# `ensure_packages … "${PINTU_TEST_PACKAGES[@]}"`.
# - mosquitto: the MQTT tests (crates/pintu-testkit/src/broker.rs) start their own brokers on free loopback ports and
#   make password files with its mosquitto_passwd. The system broker the package enables on port
#   1883 is neither needed nor touched.
# - chromium: tests/report.rs prints the access report's HTML to PDF with headless Chromium.
# - faketime: tests/faults.rs steps a real pintud's wall clock with libfaketime (LD_PRELOAD; the
#   library itself is in libfaketime, which faketime pulls in). The machine's clock is not touched.
# - postgresql: the office tests run each database test on PostgreSQL too, on a throwaway
#   server scripts/with-postgres starts (the system cluster the package creates is not used).
# - strace: tests/systemd.rs traces a real pintud session and checks every system call it makes
#   against pintud.service's SystemCallFilter= (systemd-analyze syscall-filter).
# shellcheck disable=SC2034  # used by the scripts that source this file
PINTU_TEST_PACKAGES=(mosquitto chromium faketime strace postgresql)
