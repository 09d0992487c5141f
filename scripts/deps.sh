#!/usr/bin/env bash
# Installs everything govs's build, tests and lab need on a fresh Debian 12 machine.
# Idempotent: packages already present are not reinstalled. Run as root.
set -euo pipefail

packages=(
  # BPF toolchain (regenerating bpf/ objects) and kernel headers
  clang llvm libbpf-dev linux-libc-dev
  # network plumbing used by tests and the lab
  iproute2 ethtool nftables iputils-ping tcpdump netcat-openbsd curl
  # real peers for interop tests and baselines
  keepalived nginx-light bird2 haproxy wrk dnsutils
  # a real browser for the status page test (headless, driven by chromedp)
  chromium fonts-dejavu-core
  # promtool, for the shipped alert rules' tests
  prometheus
  # fallback Go toolchain (go.mod's toolchain line upgrades it through the module proxy)
  ca-certificates git make
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts these services on install; govs's tests start their own instances.
for svc in nginx keepalived bird haproxy prometheus; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done

# Go: from PATH, else the official tarball's place (the Makefile looks
# there too), else Debian's package. Without one nothing builds: say so.
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  apt-get install -y -qq --no-install-recommends golang-go >/dev/null
fi
gobin=$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)
if ! "$gobin" version >/dev/null 2>&1; then
  echo "deps: no working Go toolchain (tried PATH, /usr/local/go/bin and Debian's golang-go); the tests cannot run" >&2
  exit 1
fi
for tool in clang ip nft keepalived nginx; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "deps: $tool is missing after installing packages; the tests cannot run" >&2
    exit 1
  fi
done
echo "deps: ok ($("$gobin" version))"
