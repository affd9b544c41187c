#!/usr/bin/env bash
# Installs the Debian packages that `make test` and `make demo` need
# (hack/apt-packages.txt) when any is missing: as root with apt-get, after a
# one-line notice; otherwise it stops with one line giving the exact command.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
list="$here/apt-packages.txt"

mapfile -t wanted < <(grep -v '^[[:space:]]*\(#\|$\)' "$list")
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
	for p in "${wanted[@]}"; do
		if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
			missing+=("$p")
		fi
	done
else
	echo "deps: no dpkg-query: not a Debian system; make sure these are installed: ${wanted[*]}" >&2
	exit 0
fi
# make image-fence-agents, and its test in make test-unit, resolve and
# download .debs through apt's package lists: a machine whose lists were
# cleaned (as container images often are) gets them back.
lists_ok() { apt-cache show --no-all-versions fence-agents >/dev/null 2>&1; }
if [ ${#missing[@]} -eq 0 ]; then
	if ! lists_ok && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "deps: apt's package lists are missing (the fence-agents image needs them): apt-get update"
		apt-get update -qq >/dev/null
	fi
	exit 0
fi

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing Debian packages: ${missing[*]}; install them with: sudo sh -c '$cmd'" >&2
	exit 1
fi
echo "deps: installing missing Debian packages (hack/apt-packages.txt): ${missing[*]}"
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	echo "deps: apt-get failed (log above); the command was: $cmd" >&2
	rm -f "$log"
	exit 1
fi
rm -f "$log"
echo "deps: installed in $((SECONDS - start))s"
