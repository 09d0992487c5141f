#!/usr/bin/env bash
# Install the govs package with dpkg into an empty root (so the test machine
# itself is left alone), check what it installed, and remove it again.
# Usage: scripts/test-deb.sh bin/govs_VERSION_ARCH.deb
set -euo pipefail
deb=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
fail() { echo "test-deb: $*" >&2; exit 1; }

mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/log"
touch "$root/var/lib/dpkg/status"
# The maintainer scripts run outside the root (there is no shell inside it);
# they see DPKG_ROOT and leave the running systemd alone.
dpkg --root="$root" --force-script-chrootless -i "$deb" >/dev/null

status=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status} ${Version}' govs)
case $status in "install ok installed "*) ;; *) fail "dpkg says '$status'";; esac
for f in /usr/sbin/govs /usr/lib/systemd/system/govs.service /etc/default/govs \
	/usr/share/doc/govs/examples/keepalived.conf /usr/share/doc/govs/copyright /usr/share/doc/govs/config.md \
	/usr/share/man/man1/govs.1.gz /usr/share/man/man1/govs-run.1.gz /usr/share/man/man1/govs-realserver-up.1.gz; do
	[ -s "$root$f" ] || fail "$f not installed"
done
grep -qx /etc/default/govs "$root/var/lib/dpkg/info/govs.conffiles" || fail "/etc/default/govs is not a conffile"
zcat "$root/usr/share/man/man1/govs-run.1.gz" | grep -q -- '--pin-dir' || fail "govs-run(1) does not document --pin-dir"

# The installed binary runs, knows its version, and accepts the example.
"$root/usr/sbin/govs" version | grep -q "^govs " || fail "govs version"
"$root/usr/sbin/govs" check -q --any-host -f "$root/usr/share/doc/govs/examples/keepalived.conf" || fail "the example configuration does not check"

# systemd accepts the installed unit with the installed binary (its path
# pointed into the root: verify --root lacks the host's targets).
if command -v systemd-analyze >/dev/null; then
	mkdir "$root/verify"
	sed "s|/usr/sbin/govs|$root/usr/sbin/govs|g" "$root/usr/lib/systemd/system/govs.service" >"$root/verify/govs.service"
	out=$(systemd-analyze verify "$root/verify/govs.service" 2>&1) || fail "systemd-analyze verify: $out"
	if echo "$out" | grep -q 'govs.service:'; then fail "systemd-analyze verify: $out"; fi
fi

dpkg --root="$root" --force-script-chrootless --purge govs >/dev/null
[ ! -e "$root/usr/sbin/govs" ] || fail "/usr/sbin/govs left after purge"
[ ! -e "$root/etc/default/govs" ] || fail "/etc/default/govs left after purge"
echo "test-deb: $(basename "$deb") installs, checks its example, verifies its unit and purges cleanly"
