#!/usr/bin/env bash
# Builds the minimal, static, audio-only FFmpeg that rtpbridge links against through go-astiav.
#
#   ffmpeg/build.sh [PREFIX]     (default PREFIX: ffmpeg/prefix next to this script)
#
# The source is Debian's own `ffmpeg` source package for the suite pinned in versions.env, fetched
# through apt from the mirror this system's apt configuration already uses (never a hard-coded host).
# Idempotent: a stamp of versions.env, configure.flags and this script is kept in PREFIX; when it
# matches, nothing is done. Environment:
#   FFMPEG_APT_MIRROR   use this archive URI instead of the one found in the apt configuration
#   FFMPEG_NO_APT=1     never install build packages (fail and name them instead)
#   FFMPEG_JOBS         parallel make jobs (default: nproc)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=${1:-$here/prefix}
work=$here/build

# shellcheck source=versions.env
. "$here/versions.env"

say() { printf 'ffmpeg: %s\n' "$*" >&2; }
die() { printf 'ffmpeg: error: %s\n' "$*" >&2; exit 1; }

flags=$(grep -vE '^[[:space:]]*(#|$)' "$here/configure.flags")
stamp=$(cat "$here/versions.env" "$here/configure.flags" "$here/build.sh" | sha256sum | cut -d' ' -f1)

if [ -f "$prefix/.stamp" ] && [ "$(cat "$prefix/.stamp")" = "$stamp" ] \
	&& [ -f "$prefix/lib/libavcodec.a" ] && [ -f "$prefix/lib/pkgconfig/libavcodec.pc" ]; then
	say "FFmpeg $FFMPEG_UPSTREAM_VERSION already built in $prefix (stamp $stamp); nothing to do"
	exit 0
fi

# --- build packages ---------------------------------------------------------------------------
need_pkgs=(build-essential nasm pkg-config libopus-dev xz-utils ca-certificates)
missing=()
for p in "${need_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "${FFMPEG_NO_APT:-0}" = 1 ] || [ "$(id -u)" != 0 ]; then
		die "missing Debian build packages: ${missing[*]} (install them with: apt-get install ${missing[*]})"
	fi
	say "installing Debian build packages: ${missing[*]}"
	apt-get update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
		|| die "apt-get install ${missing[*]} failed"
fi

# --- find the Debian archive this system already uses -----------------------------------------
# Prints "URI KEYRING" for the first apt entry whose suites include the system's own release
# (the main archive, not -security or a third-party repository).
find_mirror() {
	local codename
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	# deb822 .sources files
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v cn="$codename" '
			function flush() {
				if (uris != "" && types ~ /deb/ && (cn == "" || (" " suites " ") ~ (" " cn " "))) {
					split(uris, u, " "); print u[1], (keyring == "" ? "-" : keyring); found = 1; exit
				}
				uris = ""; suites = ""; types = ""; keyring = ""
			}
			/^[[:space:]]*$/ { flush(); next }
			/^Types:/     { sub(/^Types:[[:space:]]*/, "");     types = $0 }
			/^URIs:/      { sub(/^URIs:[[:space:]]*/, "");      uris = $0 }
			/^Suites:/    { sub(/^Suites:[[:space:]]*/, "");    suites = $0 }
			/^Signed-By:/ { sub(/^Signed-By:[[:space:]]*/, ""); keyring = $0 }
			END { if (!found) flush() }
		' "$f" && return 0
	done | head -n1
	# one-line sources.list format: deb [options] URI SUITE COMPONENTS...
	local line kr uri suite
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | while read -r line; do
		[[ $line =~ ^deb[[:space:]]+(\[([^]]*)\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+) ]] || continue
		uri=${BASH_REMATCH[3]} suite=${BASH_REMATCH[4]} kr=-
		[[ ${BASH_REMATCH[2]} =~ signed-by=([^[:space:]]+) ]] && kr=${BASH_REMATCH[1]}
		if [ -z "$codename" ] || [ "$suite" = "$codename" ]; then echo "$uri $kr"; break; fi
	done
}

if [ -n "${FFMPEG_APT_MIRROR:-}" ]; then
	mirror=$FFMPEG_APT_MIRROR keyring=-
else
	read -r mirror keyring < <(find_mirror | head -n1) || true
fi
[ -n "${mirror:-}" ] || die "no Debian archive found in /etc/apt/sources.list or /etc/apt/sources.list.d/ (set FFMPEG_APT_MIRROR to the archive URI)"
if [ "${keyring:--}" = - ]; then
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
fi

# --- fetch the source package with a private apt configuration ---------------------------------
apt_dir=$work/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/parts" "$apt_dir/cache/archives/partial" "$work/src"
cat > "$apt_dir/parts/ffmpeg-src.sources" <<EOF
Types: deb-src
URIs: $mirror
Suites: $FFMPEG_DEB_SUITE
Components: main
Signed-By: $keyring
EOF
apt_opts=(
	-o "Dir::Etc::SourceList=$apt_dir/none.list"
	-o "Dir::Etc::SourceParts=$apt_dir/parts"
	-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::Cache=$apt_dir/cache"
	-o "APT::Sandbox::User=root"
	-q
)
orig=ffmpeg_${FFMPEG_UPSTREAM_VERSION}.orig.tar.xz
if ! { [ -f "$work/src/$orig" ] && echo "$FFMPEG_ORIG_SHA256  $work/src/$orig" | sha256sum -c --status; }; then
	say "fetching source package ffmpeg=$FFMPEG_DEB_VERSION ($FFMPEG_DEB_SUITE) from $mirror"
	apt-get "${apt_opts[@]}" update >"$work/apt-update.log" 2>&1 \
		|| die "could not read the deb-src index of '$FFMPEG_DEB_SUITE' from $mirror (see $work/apt-update.log)"
	(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only "ffmpeg=$FFMPEG_DEB_VERSION") \
		>"$work/apt-source.log" 2>&1 \
		|| die "could not fetch source package ffmpeg=$FFMPEG_DEB_VERSION from $mirror suite $FFMPEG_DEB_SUITE (see $work/apt-source.log)"
	echo "$FFMPEG_ORIG_SHA256  $work/src/$orig" | sha256sum -c --status \
		|| die "$orig does not match the pinned SHA-256 $FFMPEG_ORIG_SHA256"
fi

# --- configure, build, install ---------------------------------------------------------------
srcdir=$work/ffmpeg-$FFMPEG_UPSTREAM_VERSION
rm -rf "$srcdir"
tar -C "$work" -xf "$work/src/$orig"
say "configuring FFmpeg $FFMPEG_UPSTREAM_VERSION into $prefix"
rm -rf "$prefix"
# shellcheck disable=SC2086 # the flags are one word each by construction
(cd "$srcdir" && ./configure --prefix="$prefix" $flags >"$work/configure.log" 2>&1) \
	|| { tail -n 30 "$srcdir/ffbuild/config.log" >&2 || true; die "configure failed (see $work/configure.log)"; }
say "building with ${FFMPEG_JOBS:-$(nproc)} jobs"
(cd "$srcdir" && make -j"${FFMPEG_JOBS:-$(nproc)}" >"$work/make.log" 2>&1 && make install >>"$work/make.log" 2>&1) \
	|| { tail -n 30 "$work/make.log" >&2; die "build failed (see $work/make.log)"; }

# cgo asks `pkg-config --libs` (never --static): fold Libs.private into Libs so the static
# archives bring their own dependencies (libopus, libm, pthreads).
for pc in "$prefix"/lib/pkgconfig/*.pc; do
	awk '
		/^Libs:/         { libs = $0; next }
		/^Libs.private:/ { priv = $0; sub(/^Libs.private:/, "", priv); next }
		                 { lines[++n] = $0 }
		END { for (i = 1; i <= n; i++) print lines[i]; print libs priv }
	' "$pc" >"$pc.tmp" && mv "$pc.tmp" "$pc"
done

rm -rf "$srcdir"
echo "$stamp" >"$prefix/.stamp"
say "FFmpeg $FFMPEG_UPSTREAM_VERSION installed in $prefix"
