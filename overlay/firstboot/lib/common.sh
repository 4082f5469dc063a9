# shellcheck shell=bash
# an-cluster-firstboot: helpers shared by the runner and every step (sourced, not executed).
#
# Every path is prefixed by AN_ROOT (empty on a node) and every command is looked up in PATH, so the
# test harness can run two nodes side by side in scratch roots with PATH shims. Bash 4.1 (Fedora 13):
# no ${var,,}-style tricks beyond 4.1, no mapfile -d, no wait -n, no declare -n, no ${var@Q}.
#
# Environment (all optional):
#   AN_ROOT                   root prefix for every file the scripts touch (default: empty = /)
#   AN_FIRSTBOOT_DEBUG=1      trace every command (set -x) into the log
#   AN_FIRSTBOOT_TIMEOUT      seconds a cross-node wait may take before the step fails (default 900)
#   AN_FIRSTBOOT_POLL         seconds between two checks of a wait (default 5)
#   AN_FIRSTBOOT_ENV          the per-node input (default $AN_ROOT/var/lib/an-cluster/stage/etc/an-cluster/firstboot.env)

AN_ROOT="${AN_ROOT:-}"
FB_STAGE="${AN_ROOT}/var/lib/an-cluster/stage"
FB_STATE_DIR="${AN_ROOT}/var/lib/an-cluster/firstboot"
FB_INTENT_DIR="${FB_STATE_DIR}/intent"
FB_LOG="${AN_ROOT}/var/log/an-cluster-firstboot.log"
FB_ENV_FILE="${AN_FIRSTBOOT_ENV:-${FB_STAGE}/etc/an-cluster/firstboot.env}"
FB_TIMEOUT="${AN_FIRSTBOOT_TIMEOUT:-900}"
FB_POLL="${AN_FIRSTBOOT_POLL:-5}"
FB_STEP="${FB_STEP:-an-cluster-firstboot}"

# --- logging -------------------------------------------------------------------------------------
# Messages go to the log file and to the console. The runner opens fd 3 on the console; a step run
# by hand falls back to stderr.

_fb_console_fd() {
    if { true >&3; } 2>/dev/null; then echo 3; else echo 2; fi
}

_fb_log() {
    local level="$1"; shift
    local line
    line="$(date '+%Y-%m-%d %H:%M:%S') ${FB_STEP} ${level}: $*"
    mkdir -p "${FB_LOG%/*}" 2>/dev/null || true
    printf '%s\n' "$line" >>"$FB_LOG" 2>/dev/null || true
    if [ "$(_fb_console_fd)" = 3 ]; then
        printf '%s\n' "$line" >&3
    else
        printf '%s\n' "$line" >&2
    fi
}

info() { _fb_log INFO "$@"; }
warn() { _fb_log WARN "$@"; }
error() { _fb_log ERROR "$@"; }
debug() {
    if [ "${AN_FIRSTBOOT_DEBUG:-0}" = 1 ]; then _fb_log DEBUG "$@"; fi
    return 0
}

# Exit status of a step that gave up waiting for the peer: the service tries again later (75 = EX_TEMPFAIL).
FB_EXIT_TEMPFAIL=75

# die MESSAGE [HINT]: log why the step stops (and what to do about it), then exit non-zero
# (FB_EXIT, default 1).
die() {
    error "$1"
    if [ -n "${2:-}" ]; then error "how to proceed: $2"; fi
    exit "${FB_EXIT:-1}"
}

# --- environment ---------------------------------------------------------------------------------

# Variables firstboot.env must define (the rendered per-node input; see kickstart/node/etc/an-cluster/firstboot.env.j2).
FB_REQUIRED_VARS="AN_CLUSTER_NAME AN_NODE_NAME AN_NODE_ID AN_NODE_FQDN AN_NODE_BCN_IP AN_NODE_SN_IP
AN_PEER_NAME AN_PEER_ID AN_PEER_FQDN AN_PEER_BCN_IP AN_PEER_SN_IP AN_IS_LOWEST
AN_DRBD_RESOURCE AN_DRBD_DEVICE AN_DRBD_BACKING AN_DRBD_SYNC_RATE AN_VG AN_GFS2_LV AN_GFS2_SIZE_MIB
AN_GFS2_MOUNT AN_GFS2_JOURNALS AN_GFS2_LOCK_TABLE AN_MANAGED_BY"

fb_load_env() {
    [ -r "$FB_ENV_FILE" ] || die "per-node input $FB_ENV_FILE is missing" \
        "the kickstart %post stages it from the install media (an-cluster/nodes/<node>/); copy it there and rerun 'an-cluster-firstboot run'"
    # shellcheck source=/dev/null
    . "$FB_ENV_FILE"
    local v missing=""
    for v in $FB_REQUIRED_VARS; do
        if [ -z "${!v:-}" ]; then missing="$missing $v"; fi
    done
    [ -z "$missing" ] || die "$FB_ENV_FILE does not set:$missing" "re-render the node files from the cluster definition"
}

fb_is_lowest() { [ "${AN_IS_LOWEST:-no}" = yes ]; }

# --- files ---------------------------------------------------------------------------------------

# fb_path PATH: PATH on the node, as seen from here (AN_ROOT prefixed).
fb_path() { printf '%s%s\n' "$AN_ROOT" "$1"; }

# fb_install_staged REL MODE: install the staged (rendered) file REL into place when it differs.
# Returns 1 (without failing) when the stage does not carry REL.
fb_install_staged() {
    local rel="$1" mode="$2" src dst
    src="${FB_STAGE}/${rel}"
    dst="${AN_ROOT}/${rel}"
    [ -f "$src" ] || return 1
    if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
        chmod "$mode" "$dst"
        return 0
    fi
    mkdir -p "${dst%/*}"
    fb_write_file "$dst" "$mode" <"$src"
    info "installed /${rel} (mode ${mode})"
}

# fb_write_file DEST MODE < content: atomic replace (temp file in the same directory, then rename).
fb_write_file() {
    local dst="$1" mode="$2" tmp
    tmp="$(mktemp "${dst%/*}/.${dst##*/}.XXXXXX")"
    if ! cat >"$tmp"; then rm -f "$tmp"; return 1; fi
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$dst"
}

# --- markers -------------------------------------------------------------------------------------
# intent markers record "this node is about to run a one-time destructive command on DEVICE"; together
# with the on-disk state (signature present or not) they make a rerun after a power cut safe.

fb_intent_set() {
    mkdir -p "$FB_INTENT_DIR"
    printf '%s\n' "$2" | fb_write_file "${FB_INTENT_DIR}/$1" 0644
    sync 2>/dev/null || true
}
fb_intent_has() { [ -f "${FB_INTENT_DIR}/$1" ]; }

# --- waiting -------------------------------------------------------------------------------------

# fb_wait WHAT CMD...: run CMD until it succeeds, at most FB_TIMEOUT seconds, saying what it waits for.
fb_wait() {
    local what="$1"; shift
    local deadline=$((SECONDS + FB_TIMEOUT)) next_note=$((SECONDS + 60))
    if "$@" >/dev/null 2>&1; then return 0; fi
    info "waiting for ${what} (up to ${FB_TIMEOUT}s)"
    while :; do
        sleep "$FB_POLL"
        if "$@" >/dev/null 2>&1; then
            info "done waiting: ${what}"
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            FB_EXIT=$FB_EXIT_TEMPFAIL die "timed out after ${FB_TIMEOUT}s waiting for ${what}" \
                "check the peer ($AN_PEER_NAME) is up and its firstboot is running ('an-cluster-firstboot status' there), then rerun 'an-cluster-firstboot run' or reboot"
        fi
        if [ "$SECONDS" -ge "$next_note" ]; then
            info "still waiting for ${what}"
            next_note=$((SECONDS + 60))
        fi
    done
}

# --- block devices -------------------------------------------------------------------------------

# A probe that fails must never read as "blank": every probe below either answers or makes
# fb_signatures fail with the probe's own message (util-linux-ng 2.17.2, misc-utils/blkid.c and wipefs.c).

# _fb_read_check DEV: the first 4 KiB of DEV can be read (blkid 2.17.2 turns a read error while
# probing into a silent "nothing found", exit 2).
_fb_read_check() {
    local out
    out="$(dd if="$1" of=/dev/null bs=4096 count=1 2>&1)" || { printf 'cannot read %s: %s\n' "$1" "$out"; return 1; }
}

# _fb_blkid DEV TAG: TAG's value on DEV, empty when blkid finds none. blkid -p exits 2 both for
# "nothing found" and for a device it cannot open or an ambivalent probe (lowprobe_device; those print
# a message): exit 2 is "nothing" only when blkid said nothing. Prints the message and fails otherwise.
_fb_blkid() {
    local out errf err rc=0
    errf="$(mktemp "${TMPDIR:-/tmp}/fb-probe.XXXXXX")"
    out="$(blkid -p -o value -s "$2" "$1" 2>"$errf")" || rc=$?
    err="$(cat "$errf")"
    rm -f "$errf"
    if [ "$rc" = 0 ] || { [ "$rc" = 2 ] && [ -z "$err" ]; }; then
        printf '%s\n' "$out"
        return 0
    fi
    printf "'blkid -p %s' failed (exit %s): %s\n" "$1" "$rc" "${err:-no message}"
    return 1
}

# _fb_wipefs DEV: the signature types wipefs -n -p lists on DEV, one a line. wipefs 2.17.2 refuses a
# device with a partition table ("appears to contain 'dos' partition table", exit 1): that is a
# signature, reported as its type; any other failure prints wipefs's message and fails.
_fb_wipefs() {
    local out rc=0 pt
    out="$(wipefs -n -p "$1" 2>&1)" || rc=$?
    if [ "$rc" = 0 ]; then
        printf '%s\n' "$out" | awk -F, '!/^#/ && NF >= 4 {print $NF}'
        return 0
    fi
    pt="$(printf '%s\n' "$out" | sed -n "s/.*appears to contain '\([^']*\)' partition table.*/\1/p" | head -n 1)"
    if [ -n "$pt" ]; then printf '%s\n' "$pt"; return 0; fi
    printf "'wipefs -n -p %s' failed (exit %s): %s\n" "$1" "$rc" "${out:-no message}"
    return 1
}

# fb_signatures DEV: space-separated list of the signatures on DEV (filesystems, RAID, LVM, DRBD
# metadata, partition tables), empty when the device is blank. Uses both blkid (probing) and
# wipefs -n (every magic it knows), so a half-overwritten device still counts as used.
# When a probe fails, prints its message instead and returns 1: the caller must refuse.
fb_signatures() {
    local dev="$1" types="" t w
    _fb_read_check "$dev" || return 1
    t="$(_fb_blkid "$dev" TYPE)" || { printf '%s\n' "$t"; return 1; }
    if [ -n "$t" ]; then types="$t"; fi
    t="$(_fb_blkid "$dev" PTTYPE)" || { printf '%s\n' "$t"; return 1; }
    if [ -n "$t" ]; then types="${types:+$types }$t"; fi
    w="$(_fb_wipefs "$dev")" || { printf '%s\n' "$w"; return 1; }
    for t in $(printf '%s\n' "$w" | sort -u); do
        case " $types " in *" $t "*) ;; *) types="${types:+$types }$t" ;; esac
    done
    printf '%s\n' "$types"
}

# fb_probe_failed WHAT DEV MESSAGE: stop the step because DEV could not be probed (nothing written).
fb_probe_failed() {
    die "refusing to run $1: cannot tell whether $2 is blank: $3" \
        "nothing was written. Fix what keeps the probe from reading $2 (is the device there and readable?), then rerun 'an-cluster-firstboot run'"
}

# fb_guard_destructive KEY DEV EXPECTED WHAT [ADOPT]: decide whether the one-time command KEY may run on
# DEV. Prints "run" (device blank: intent recorded, go ahead) or "done" (our own EXPECTED signature is
# there from an earlier, interrupted run). Anything else stops the step and explains how to proceed;
# ADOPT is the command that makes a foreign EXPECTED signature ours (default: record the intent).
fb_guard_destructive() {
    local key="$1" dev="$2" expected="$3" what="$4" adopt="${5:-}" sigs
    sigs="$(fb_signatures "$dev")" || fb_probe_failed "$what" "$dev" "$sigs"
    if [ -z "$sigs" ]; then
        fb_intent_set "$key" "$dev"
        echo run
        return 0
    fi
    if fb_intent_has "$key" && [ "$sigs" = "$expected" ]; then
        info "$dev already carries the $expected signature this node created earlier: not running $what again"
        echo "done"
        return 0
    fi
    local keep=""
    if [ "$sigs" = "$expected" ]; then
        keep="; if it is the $expected you mean to keep, adopt it with '${adopt:-echo $dev > $FB_INTENT_DIR/$key}' and rerun"
    fi
    die "refusing to run $what: $dev already carries data (signature: $sigs)" \
        "nothing was written. If that data is expendable, wipe it yourself ('wipefs -a $dev') and rerun 'an-cluster-firstboot run'${keep}"
}

# --- services ------------------------------------------------------------------------------------

fb_service_running() { service "$1" status >/dev/null 2>&1; }

fb_service_start() {
    if fb_service_running "$1"; then
        debug "$1 already running"
        return 0
    fi
    info "starting $1"
    service "$1" start || die "'service $1 start' failed" "see /var/log/messages, fix the cause, then rerun 'an-cluster-firstboot run'"
}

# fb_mounted MOUNTPOINT: is MOUNTPOINT mounted (reads $AN_ROOT/proc/mounts)?
fb_mounted() {
    awk -v m="$1" '$2 == m {found=1} END {exit !found}' "${AN_ROOT}/proc/mounts" 2>/dev/null
}

# --- step entry point ----------------------------------------------------------------------------

# A command that failed under set -e (not a die): name it, so the log says what went wrong.
_fb_step_err() {
    if [ -z "${FB_ERR_SEEN:-}" ]; then
        FB_ERR_SEEN=1
        error "command failed (exit $1, line $2): $3"
    fi
}

# fb_mktemp: a temporary file in this step's own directory, removed when the step ends however it ends.
fb_mktemp() { mktemp "$FB_TMPDIR/tmp.XXXXXX"; }

_fb_step_cleanup() {
    if [ -n "${FB_TMPDIR:-}" ]; then rm -rf "$FB_TMPDIR"; fi
}

fb_step_init() {
    FB_STEP="$1"
    FB_TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/an-cluster-firstboot.XXXXXX")"
    trap _fb_step_cleanup EXIT
    if [ "${AN_FIRSTBOOT_DEBUG:-0}" = 1 ]; then
        PS4='+ ${FB_STEP}:${LINENO}: '
        set -x
    fi
    set -E
    trap '_fb_step_err $? ${LINENO} "${BASH_COMMAND}"' ERR
    fb_load_env
}
