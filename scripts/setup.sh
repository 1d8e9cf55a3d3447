# scripts/setup.sh - shared by scripts/demo and scripts/run-tests (sourced).
#
# Installs the Debian packages altinnfs needs to build and test (as root,
# only those missing), and builds into a given build directory.

ALTINNFS_PACKAGES="meson ninja-build pkg-config gcc libc6-dev libfuse3-dev fuse3
libcurl4-openssl-dev libjansson-dev libssl-dev libinih-dev libsqlite3-dev libmicrohttpd-dev
libsystemd-dev systemd scdoc dpkg-dev debhelper fakeroot lintian
python3 python3-pytest python3-cryptography python3-prometheus-client
attr curl procps inotify-tools jq rsync"
# scripts/fuzz (and so run-tests) also needs clang and its libFuzzer
ALTINNFS_FUZZ_PACKAGES="$ALTINNFS_PACKAGES clang libclang-rt-14-dev"

# setup_packages [PACKAGES...]: default $ALTINNFS_PACKAGES
setup_packages() {
	local missing=() wanted=("$@")
	[ ${#wanted[@]} -gt 0 ] || wanted=($ALTINNFS_PACKAGES)
	for p in "${wanted[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "altinnfs setup: missing packages: ${missing[*]}" >&2
		echo "altinnfs setup: run this as root, or: sudo apt-get install -y ${missing[*]}" >&2
		return 1
	fi
	echo "altinnfs setup: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# setup_build DIR [meson options...]
setup_build() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" -Dwerror=true "$@"
	else
		meson configure "$dir" -Dwerror=true "$@" >/dev/null
	fi
	ninja -C "$dir"
}
