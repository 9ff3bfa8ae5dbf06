#!/usr/bin/env bash
# Builds the minimal, static, audio-only FFmpeg that rtpbridge links against through go-astiav,
# together with the static libopus it uses for Opus.
#
#   ffmpeg/build.sh [PREFIX]     (default PREFIX: ffmpeg/prefix next to this script)
#
# Both sources are Debian's own source packages (`opus` and `ffmpeg`) for the suite pinned in
# versions.env, fetched through apt from the mirror this system's apt configuration already
# uses (never a hard-coded host); each orig tarball's SHA-256 is checked. libopus is built
# first (static, float, run-time CPU detection with SSE4.1/AVX2 intrinsics), then FFmpeg with
# --enable-libopus against it and with the patches in patches/ applied. Nothing of the system's
# libopus is used, so the binary needs no libopus0 at run time.
#
# Everything is built and installed into a staging directory first; PREFIX is replaced only
# once both builds have succeeded, so a failed or interrupted build leaves the previous one
# usable. Idempotent: a stamp of versions.env, configure.flags, patches/ and this script is
# kept in PREFIX; when it matches, nothing is done. Environment:
#   FFMPEG_APT_MIRROR   use this archive URI instead of the one found in the apt configuration
#   FFMPEG_NO_APT=1     never install build packages (fail and name them instead)
#   FFMPEG_JOBS         parallel make jobs (default: nproc)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=${1:-$here/prefix}
case $prefix in /*) ;; *) prefix=$PWD/$prefix ;; esac
work=$here/build
jobs=${FFMPEG_JOBS:-$(nproc)}

# shellcheck source=versions.env
. "$here/versions.env"

say() { printf 'ffmpeg: %s\n' "$*" >&2; }
die() { printf 'ffmpeg: error: %s\n' "$*" >&2; exit 1; }

flags=$(grep -vE '^[[:space:]]*(#|$)' "$here/configure.flags")
patches=("$here"/patches/*.patch)
[ -e "${patches[0]}" ] || patches=()
stamp=$(cat "$here/versions.env" "$here/configure.flags" "$here/build.sh" ${patches[@]+"${patches[@]}"} \
	| sha256sum | cut -d' ' -f1)

if [ -f "$prefix/.stamp" ] && [ "$(cat "$prefix/.stamp")" = "$stamp" ] \
	&& [ -f "$prefix/lib/libavcodec.a" ] && [ -f "$prefix/lib/libopus.a" ] && [ -x "$prefix/bin/opus_demo" ] \
	&& [ -f "$prefix/lib/pkgconfig/libavcodec.pc" ]; then
	say "FFmpeg $FFMPEG_UPSTREAM_VERSION with libopus $OPUS_UPSTREAM_VERSION already built in $prefix (stamp $stamp); nothing to do"
	exit 0
fi

# libopus configure flags. Measured on speech (pkg/codec benchmarks, cpu-ns per 20 ms frame):
# the SSE4.1/AVX2 intrinsics chosen at run time are what make 1.5 fast (without them PCMU→Opus
# costs 1.7x as much); -O3, -march=x86-64-v2 and --disable-float-approx change nothing
# measurable, fixed point is slower, and -march beyond x86-64 would tie the binary to newer
# CPUs, so plain -O2 with run-time detection it is. The neural extras of 1.5 (deep PLC, DRED,
# OSCE) stay off: they need decoder complexity ≥ 5 to run at all, cost CPU per stream and
# carry megabytes of weights. Of the extra programs only opus_demo is built and installed, as
# PREFIX/bin/opus_demo: libopus's own command-line front end, which pkg/codec's tests use to
# check that our encoder drives this libopus with the documented settings.
opus_flags=(
	--disable-shared --enable-static --with-pic
	--enable-rtcd --enable-intrinsics
	--disable-deep-plc --disable-dred --disable-osce
	--disable-doc --disable-maintainer-mode
)

# --- build packages ---------------------------------------------------------------------------
# (patch comes with build-essential's dpkg-dev; it is named for FFMPEG_NO_APT's message.)
need_pkgs=(build-essential nasm pkg-config patch xz-utils ca-certificates)
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

# --- fetch the source packages with a private apt configuration --------------------------------
apt_dir=$work/apt
apt_opts=(
	-o "Dir::Etc::SourceList=$apt_dir/none.list"
	-o "Dir::Etc::SourceParts=$apt_dir/parts"
	-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::Cache=$apt_dir/cache"
	-o "APT::Sandbox::User=root"
	-q
)
mkdir -p "$work/src"
mirror=
apt_ready=

# apt_setup writes the private deb-src list (once) and reads its index.
apt_setup() {
	[ -z "$apt_ready" ] || return 0
	local keyring=-
	if [ -n "${FFMPEG_APT_MIRROR:-}" ]; then
		mirror=$FFMPEG_APT_MIRROR
	else
		read -r mirror keyring < <(find_mirror | head -n1) || true
	fi
	[ -n "${mirror:-}" ] || die "no Debian archive found in /etc/apt/sources.list or /etc/apt/sources.list.d/ (set FFMPEG_APT_MIRROR to the archive URI)"
	if [ "${keyring:--}" = - ]; then
		keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	fi
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/parts" "$apt_dir/cache/archives/partial"
	rm -f "$apt_dir"/parts/*
	cat > "$apt_dir/parts/rtpbridge-src.sources" <<-EOF
	Types: deb-src
	URIs: $mirror
	Suites: $FFMPEG_DEB_SUITE
	Components: main
	Signed-By: $keyring
	EOF
	apt-get "${apt_opts[@]}" --error-on=any update >"$work/apt-update.log" 2>&1 \
		|| die "could not read the deb-src index of '$FFMPEG_DEB_SUITE' from $mirror (see $work/apt-update.log)"
	apt_ready=1
}

# fetch PACKAGE DEB_VERSION ORIG_TARBALL SHA256: puts Debian's source package in $work/src
# unless its orig tarball is already there with the pinned checksum.
fetch() {
	local pkg=$1 version=$2 orig=$3 sha=$4
	if [ -f "$work/src/$orig" ] && echo "$sha  $work/src/$orig" | sha256sum -c --status; then
		return 0
	fi
	apt_setup
	say "fetching source package $pkg=$version ($FFMPEG_DEB_SUITE) from $mirror"
	(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only "$pkg=$version") \
		>"$work/apt-source-$pkg.log" 2>&1 \
		|| die "could not fetch source package $pkg=$version from $mirror suite $FFMPEG_DEB_SUITE (see $work/apt-source-$pkg.log)"
	[ -f "$work/src/$orig" ] || die "source package $pkg=$version has no $orig"
	echo "$sha  $work/src/$orig" | sha256sum -c --status \
		|| die "$orig does not match the pinned SHA-256 $sha"
}

opus_orig=opus_${OPUS_UPSTREAM_VERSION}.orig.tar.gz
ffmpeg_orig=ffmpeg_${FFMPEG_UPSTREAM_VERSION}.orig.tar.xz
fetch opus "$OPUS_DEB_VERSION" "$opus_orig" "$OPUS_ORIG_SHA256"
fetch ffmpeg "$FFMPEG_DEB_VERSION" "$ffmpeg_orig" "$FFMPEG_ORIG_SHA256"

# --- build into the staging directory ---------------------------------------------------------
# Both are configured for PREFIX and installed with DESTDIR=$stage, so every path they record
# is PREFIX's; FFmpeg finds the staged libopus through pkg-config with $stage as sysroot, and
# only there (PKG_CONFIG_LIBDIR), never a system libopus.
stage=$work/stage
staged=$stage$prefix
rm -rf "$stage"

opus_src=$work/opus-$OPUS_UPSTREAM_VERSION
rm -rf "$opus_src"
tar -C "$work" -xzf "$work/src/$opus_orig"
say "configuring libopus $OPUS_UPSTREAM_VERSION"
(cd "$opus_src" && ./configure --prefix="$prefix" "${opus_flags[@]}" CFLAGS="-O2" >"$work/opus-configure.log" 2>&1) \
	|| { tail -n 30 "$opus_src/config.log" >&2 || true; die "libopus configure failed (see $work/opus-configure.log)"; }
say "building libopus with $jobs jobs"
(cd "$opus_src" && make -j"$jobs" libopus.la opus_demo >"$work/opus-make.log" 2>&1 \
	&& make install-libLTLIBRARIES install-pkgincludeHEADERS install-pkgconfigDATA DESTDIR="$stage" >>"$work/opus-make.log" 2>&1 \
	&& install -D -m 0755 opus_demo "$staged/bin/opus_demo") \
	|| { tail -n 30 "$work/opus-make.log" >&2; die "libopus build failed (see $work/opus-make.log)"; }
rm -f "$staged"/lib/*.la
[ -f "$staged/lib/libopus.a" ] && [ -f "$staged/lib/pkgconfig/opus.pc" ] && [ -f "$staged/include/opus/opus.h" ] \
	|| die "libopus did not install libopus.a, opus.pc and its headers"

srcdir=$work/ffmpeg-$FFMPEG_UPSTREAM_VERSION
rm -rf "$srcdir"
tar -C "$work" -xf "$work/src/$ffmpeg_orig"
for p in ${patches[@]+"${patches[@]}"}; do
	say "applying $(basename "$p")"
	patch -d "$srcdir" -p1 --forward --batch --quiet <"$p" || die "patch $p does not apply"
done
say "configuring FFmpeg $FFMPEG_UPSTREAM_VERSION for $prefix"
export PKG_CONFIG_LIBDIR=$staged/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_PATH=
# shellcheck disable=SC2086 # the flags are one word each by construction
(cd "$srcdir" && ./configure --prefix="$prefix" $flags >"$work/configure.log" 2>&1) \
	|| { tail -n 30 "$srcdir/ffbuild/config.log" >&2 || true; die "configure failed (see $work/configure.log)"; }
# The libopus FFmpeg compiles against must be the staged one.
grep -qF -- "-I$staged/include/opus" "$srcdir/ffbuild/config.mak" \
	|| die "FFmpeg is not using the libopus built here (see $srcdir/ffbuild/config.mak)"
say "building FFmpeg with $jobs jobs"
(cd "$srcdir" && make -j"$jobs" >"$work/make.log" 2>&1 && make install DESTDIR="$stage" >>"$work/make.log" 2>&1) \
	|| { tail -n 30 "$work/make.log" >&2; die "build failed (see $work/make.log)"; }
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH

# pkg-config put the sysroot in front of libopus's -L in FFmpeg's Libs.private: drop it. And cgo
# asks `pkg-config --libs` (never --static): fold Libs.private into Libs so the static archives
# bring their own dependencies (libopus, libm, pthreads).
for pc in "$staged"/lib/pkgconfig/*.pc; do
	sed -i "s#$stage$prefix#$prefix#g" "$pc"
	awk '
		/^Libs:/         { libs = $0; next }
		/^Libs.private:/ { priv = $0; sub(/^Libs.private:/, "", priv); next }
		                 { lines[++n] = $0 }
		END { for (i = 1; i <= n; i++) print lines[i]; print libs priv }
	' "$pc" >"$pc.tmp" && mv "$pc.tmp" "$pc"
done
! grep -rqF "$stage" "$staged/lib/pkgconfig" || die "staging path left in the pkg-config files"

echo "$stamp" >"$staged/.stamp"
rm -rf "$prefix"
mkdir -p "$(dirname "$prefix")"
mv "$staged" "$prefix"
rm -rf "$stage" "$srcdir" "$opus_src"
say "FFmpeg $FFMPEG_UPSTREAM_VERSION with libopus $OPUS_UPSTREAM_VERSION installed in $prefix"
