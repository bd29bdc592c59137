# shellcheck shell=bash
# Download and unpack Debian 12 (bookworm) `main` packages into a work directory without
# installing anything; sourced by scripts/rebuild-broad-corpus.sh and scripts/rebuild-heldout.sh.
#
#   deb_init WORK_DIR     sets up a private apt state in WORK_DIR/apt (its own sources list for
#                         deb.debian.org bookworm, bookworm-updates and bookworm-security and its
#                         own package lists; the system's apt configuration, lists and dpkg
#                         database are neither read for selection nor changed)
#   deb_fetch PKG...      `apt-get download`s every PKG whose .deb is not yet in WORK_DIR/debs
#                         (so a second run needs no network), the newest version in bookworm
#   deb_unpack PKG...     `dpkg-deb -x` (or `ar` + `tar`) each PKG into WORK_DIR/x/PKG, once per
#                         .deb file name; appends "PKG VERSION" lines to WORK_DIR/versions-*.txt
#   deb_root PKG          prints WORK_DIR/x/PKG
#
# Environment: DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR (archive URLs). Expects `die` to be defined.

deb_init() {
    deb_work=$1
    deb_apt=$deb_work/apt
    deb_debs=$deb_work/debs
    local mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
    local security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
    mkdir -p "$deb_debs" "$deb_apt"/{lists/partial,cache/archives/partial,empty.d} "$deb_apt/etc" "$deb_work/x"
    [[ -f $deb_apt/status ]] || : > "$deb_apt/status"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg signed=
    [[ -r $keyring ]] && signed=" [signed-by=$keyring]"
    cat > "$deb_apt/etc/sources.list" <<SOURCES
deb$signed $mirror bookworm main
deb$signed $mirror bookworm-updates main
deb$signed $security bookworm-security main
SOURCES
    unset APT_CONFIG
    deb_apt_opts=(
        -q -o "Dir::Etc::main=/dev/null" -o "Dir::Etc::parts=$deb_apt/empty.d"
        -o "Dir::Etc::sourcelist=$deb_apt/etc/sources.list" -o "Dir::Etc::sourceparts=$deb_apt/empty.d"
        -o "Dir::Etc::preferences=/dev/null" -o "Dir::Etc::preferencesparts=$deb_apt/empty.d"
        -o "Dir::State::Lists=$deb_apt/lists" -o "Dir::State::status=$deb_apt/status"
        -o "Dir::Cache=$deb_apt/cache" -o "APT::Sandbox::User=$(id -un)"
    )
    deb_updated=
}

deb_cached() { # prints the one cached .deb of package $1, if any
    local f
    for f in "$deb_debs/$1"_*.deb; do [[ -f $f ]] && { echo "$f"; return; }; done
}

deb_fetch() {
    local p f tmp=$deb_debs/.partial missing=()
    for p in "$@"; do [[ -n $(deb_cached "$p") ]] || missing+=("$p"); done
    ((${#missing[@]})) || return 0
    if [[ -z $deb_updated ]]; then
        echo "== updating a private apt package list in $deb_apt"
        apt-get "${deb_apt_opts[@]}" --error-on=any update >"$deb_apt/update.log" 2>&1 ||
            die "apt-get update failed: $(grep -m1 -E '^(E|W|Err):' "$deb_apt/update.log" || tail -n1 "$deb_apt/update.log")"
        deb_updated=1
    fi
    echo "== downloading ${#missing[@]} packages into $deb_debs"
    for p in "${missing[@]}"; do
        rm -rf "$tmp" && mkdir -p "$tmp"
        (cd "$tmp" && apt-get "${deb_apt_opts[@]}" download "$p" >"$tmp.log" 2>&1) ||
            die "cannot download Debian package '$p': $(grep -m1 '^E:' "$tmp.log" || tail -n1 "$tmp.log")"
        f=$(find "$tmp" -maxdepth 1 -name '*.deb' | head -n1)
        [[ -n $f ]] || die "cannot download Debian package '$p': no .deb came back"
        mv "$f" "$deb_debs/"
    done
    rm -rf "$tmp" "$tmp.log"
}

deb_root() { echo "$deb_work/x/$1"; }

deb_unpack() { # deb_unpack VERSIONS_FILE PKG...
    local versions=$1 p deb v dir member
    shift
    : > "$versions"
    for p in "$@"; do
        deb=$(deb_cached "$p")
        [[ -n $deb ]] || die "package '$p' was not downloaded"
        # .deb names are PKG_VERSION_ARCH.deb (":" of an epoch written as %3a)
        v=${deb##*/}; v=${v#"${p}"_}; v=${v%_*.deb}; v=${v//%3a/:}
        printf '%-32s %s\n' "$p" "$v" >> "$versions"
        dir=$deb_work/x/$p
        [[ $(cat "$dir/.extracted" 2>/dev/null) == "${deb##*/}" ]] && continue
        rm -rf "$dir" && mkdir -p "$dir"
        if command -v dpkg-deb >/dev/null; then
            dpkg-deb -x "$deb" "$dir" || die "cannot extract $deb"
        else
            command -v ar >/dev/null || die "need dpkg-deb or ar to extract $deb"
            member=$(ar t "$deb" | grep '^data\.tar') || die "no data.tar member in $deb"
            (cd "$dir" && ar x "$deb" "$member" && tar -xf "$member" && rm -f "$member") ||
                die "cannot extract $deb"
        fi
        # unreadable or odd modes in some packages; the trees are only read
        chmod -R u+rwX "$dir"
        echo "${deb##*/}" > "$dir/.extracted"
    done
}
