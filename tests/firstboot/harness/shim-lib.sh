# shellcheck shell=bash
# Shared by the bash shims (the hot ones: drbdadm-83 calls drbdsetup before every command, step 40
# calls chkconfig dozens of times). See fbshim.py for the conventions (FBH_DIR, FBH_NODE, calls.log).
set -u
# shellcheck source=/dev/null
. "$FBH_DIR/nodes/$FBH_NODE/info.sh"   # PEER ROOT DRBD_DEVICE DRBD_LOOP

shim_record() {
    local cmd="$1"; shift
    local IFS=$'\x1f'
    { flock 9; printf '%s\t%s\t%s\n' "$FBH_NODE" "$cmd" "$*" >&9; } 9>>"$FBH_DIR/calls.log"
}

# shim_maybe_kill before|after TEXT: a power cut (SIGKILL to the runner's whole process group) at the
# first call whose TEXT contains the FBH_KILL pattern ("before:<pattern>" or "after:<pattern>").
shim_maybe_kill() {
    local when="$1" text="$2" spec="${FBH_KILL:-}" flag="$FBH_DIR/killed/$FBH_NODE"
    case "$spec" in "$when":*) ;; *) return 0 ;; esac
    case "$text" in *"${spec#*:}"*) ;; *) return 0 ;; esac
    [ -e "$flag" ] && return 0
    mkdir -p "${flag%/*}"
    echo "$when $text" >"$flag"
    { flock 9; printf '%s\t#power-cut\t%s\n' "$FBH_NODE" "$when $text" >&9; } 9>>"$FBH_DIR/calls.log"
    kill -KILL 0
}
