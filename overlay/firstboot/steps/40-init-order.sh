#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 40-init-order: the SysV start order of the cluster services, exactly as the one table in
# isobuild/initorder.py says (rendered to /etc/an-cluster/init-order). Seed: "Make xend play nice with
# clustering" and "Altering Daemon Start Order": the chkconfig line and the LSB Required-Start/-Stop of
# each init script are edited in place, then the service is removed and re-added with chkconfig so the
# rc?.d links follow, and switched on or off (storage.managed_by: rgmanager leaves drbd, clvmd, gfs2
# and xendomains off: rgmanager runs them).
#
# Table lines: service on|off chkconfig-levels start stop Required-Start Required-Stop (lists comma
# separated, "-" for empty).
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
fb_step_init 40-init-order

TABLE="${FB_STAGE}/etc/an-cluster/init-order"

# edit_header SCRIPT LEVELS START STOP REQ_START REQ_STOP: rewrite the header lines in place.
edit_header() {
    local script="$1" levels="$2" start="$3" stop="$4" rstart="$5" rstop="$6" tmp
    tmp="$(fb_mktemp)"
    if ! awk -v cc="$levels $start $stop" -v rs="$rstart" -v rp="$rstop" '
        function emit_missing() {
            if (!done_rs) print "# Required-Start: " rs
            if (!done_rp) print "# Required-Stop: " rp
            done_rs = done_rp = 1
        }
        /^#[ \t]*chkconfig:/ && !done_cc { print "# chkconfig: " cc; done_cc = 1; next }
        /^### BEGIN INIT INFO/ { in_info = 1 }
        in_info && /^#[ \t]*Required-Start:/ { print "# Required-Start: " rs; done_rs = 1; next }
        in_info && /^#[ \t]*Required-Stop:/ { print "# Required-Stop: " rp; done_rp = 1; next }
        /^### END INIT INFO/ && in_info { emit_missing(); in_info = 0 }
        { print }
        END { if (!done_cc) exit 3 }' "$script" >"$tmp"; then
        rm -f "$tmp"
        die "$script has no '# chkconfig:' line" "reinstall the package that owns it"
    fi
    if cmp -s "$tmp" "$script"; then rm -f "$tmp"; return 0; fi
    # clvmd ships 0555 (lvm2-cluster bug 636066): the replaced file keeps the script's own mode
    fb_write_file "$script" "$(stat -c '%a' "$script")" <"$tmp"
    rm -f "$tmp"
    info "init header of ${script##*/}: chkconfig $levels $start $stop; Required-Start: $rstart"
}

main() {
    [ -f "$TABLE" ] || die "$TABLE is missing" "it is rendered from isobuild/initorder.py; restage the node files"
    local name state levels start stop rstart rstop script n=0
    local -a names=() states=()
    while read -r name state levels start stop rstart rstop; do
        case "$name" in '' | '#'*) continue ;; esac
        [ -n "$rstop" ] || die "$TABLE: malformed line for '$name'" "restage the node files"
        [ "$rstart" = - ] && rstart=""
        [ "$rstop" = - ] && rstop=""
        script="$(fb_path "/etc/rc.d/init.d/$name")"
        if [ ! -f "$script" ]; then
            if [ "$state" = on ]; then
                die "init script $name is not installed but must start at boot" "install the package that provides /etc/init.d/$name and rerun"
            fi
            warn "init script $name is not installed (it stays off anyway)"
            continue
        fi
        edit_header "$script" "$levels" "$start" "$stop" "${rstart//,/ }" "${rstop//,/ }"
        names+=("$name")
        states+=("$state")
        n=$((n + 1))
    done <"$TABLE"
    [ "$n" -gt 0 ] || die "$TABLE lists no service" "restage the node files"
    # Re-add every service so chkconfig recomputes the links from the new headers, then on/off.
    local i
    for ((i = 0; i < n; i++)); do
        chkconfig --del "${names[$i]}" >/dev/null 2>&1 || true
        chkconfig --add "${names[$i]}"
        chkconfig "${names[$i]}" "${states[$i]}"
    done
    info "start order set for: ${names[*]}"
}

main "$@"
