#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 40-init-order: the SysV start order of the cluster services, exactly as the one table in
# isobuild/initorder.py says (rendered to /etc/an-cluster/init-order). Seed: "Make xend play nice with
# clustering" and "Altering Daemon Start Order". The packages' init scripts are left as shipped:
# each service gets an override file /etc/chkconfig.d/<service> (chkconfig line and LSB
# Required-Start/-Stop), which chkconfig merges over the script's own header (chkconfig 1.3.4x
# leveldb.c readServiceInfo) every time it reads it, so a package update that restores the stock
# script and runs `chkconfig --add` in its %post keeps this order. Then the service is removed and
# re-added so the rc?.d links follow, and switched on or off (storage.managed_by: rgmanager leaves
# drbd, clvmd, gfs2 and xendomains off: rgmanager runs them).
#
# Table lines: service on|off|later chkconfig-levels start stop Required-Start Required-Stop (lists
# comma separated, "-" for empty). later: off for now; the step that needs the service first switches
# it on (init mode: drbd, by 60-drbd once the metadata exists).
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
fb_step_init 40-init-order

TABLE="${FB_STAGE}/etc/an-cluster/init-order"

# override NAME LEVELS START STOP REQ_START REQ_STOP: the text of /etc/chkconfig.d/NAME. No
# description line in it: chkconfig's parser stops reading a file once it has levels and a
# description, and the LSB block must be read.
override() {
    echo "# AN!Cluster start order of $1 (isobuild/initorder.py; an-cluster-firstboot 40-init-order)."
    echo "# chkconfig merges this over /etc/init.d/$1; package updates leave it alone."
    echo "# chkconfig: $2 $3 $4"
    echo "### BEGIN INIT INFO"
    echo "# Provides: $1"
    echo "# Required-Start: $5"
    echo "# Required-Stop: $6"
    echo "### END INIT INFO"
}

# write_override NAME LEVELS START STOP REQ_START REQ_STOP: /etc/chkconfig.d/NAME, when it differs.
write_override() {
    local dir
    dir="$(fb_path /etc/chkconfig.d)"
    mkdir -p "$dir"
    if fb_update "$dir/$1" 0644 override "$@"; then
        info "chkconfig override for $1: chkconfig $2 $3 $4; Required-Start: $5"
    fi
}

main() {
    [ -f "$TABLE" ] || die "$TABLE is missing" "it is rendered from isobuild/initorder.py; restage the node files"
    local name state levels start stop rstart rstop n=0
    local -a names=() states=()
    while read -r name state levels start stop rstart rstop; do
        case "$name" in '' | '#'*) continue ;; esac
        [ -n "$rstop" ] || die "$TABLE: malformed line for '$name'" "restage the node files"
        [ "$rstart" = - ] && rstart=""
        [ "$rstop" = - ] && rstop=""
        if [ ! -f "$(fb_path "/etc/rc.d/init.d/$name")" ]; then
            if [ "$state" != off ]; then
                die "init script $name is not installed but must start at boot" "install the package that provides /etc/init.d/$name and rerun"
            fi
            warn "init script $name is not installed (it stays off anyway)"
            continue
        fi
        write_override "$name" "$levels" "$start" "$stop" "${rstart//,/ }" "${rstop//,/ }"
        names+=("$name")
        states+=("$state")
        n=$((n + 1))
    done <"$TABLE"
    [ "$n" -gt 0 ] || die "$TABLE lists no service" "restage the node files"
    # Re-add every service so chkconfig recomputes the links from the overrides, then on/off.
    local i
    for ((i = 0; i < n; i++)); do
        chkconfig --del "${names[$i]}" >/dev/null 2>&1 || true
        chkconfig --add "${names[$i]}"
        if [ "${states[$i]}" = later ]; then
            chkconfig "${names[$i]}" off
        else
            chkconfig "${names[$i]}" "${states[$i]}"
        fi
    done
    info "start order set for: ${names[*]}"
}

main "$@"
