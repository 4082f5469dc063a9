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

# fb_report_failure MESSAGE [HINT]: log what went wrong and what to do about it (errors).
fb_report_failure() {
    error "$1"
    if [ -n "${2:-}" ]; then error "how to proceed: $2"; fi
}

# fb_stop: end the step, non-zero (FB_EXIT, default 1); the temp file of a rewrite under way goes too.
fb_stop() {
    if [ -n "${FB_REWRITE_TMP:-}" ]; then rm -f "$FB_REWRITE_TMP"; fi
    exit "${FB_EXIT:-1}"
}

# die MESSAGE [HINT]: log why the step stops (and what to do about it), then stop it.
die() {
    fb_report_failure "$@"
    fb_stop
}

# --- environment ---------------------------------------------------------------------------------

# Variables firstboot.env must define (the rendered per-node input; see kickstart/node/etc/an-cluster/firstboot.env.j2).
FB_REQUIRED_VARS="AN_CLUSTER_NAME AN_NODE_NAME AN_NODE_ID AN_NODE_FQDN AN_NODE_BCN_IP AN_NODE_SN_IP
AN_PEER_NAME AN_PEER_ID AN_PEER_FQDN AN_PEER_BCN_IP AN_PEER_SN_IP AN_IS_LOWEST
AN_DRBD_RESOURCE AN_DRBD_DEVICE AN_DRBD_BACKING AN_DRBD_SYNC_RATE AN_VG AN_GFS2_LV AN_GFS2_SIZE_MIB
AN_GFS2_MOUNT AN_GFS2_JOURNALS AN_GFS2_LOCK_TABLE AN_MANAGED_BY AN_RENDEZVOUS_PORT"

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
    mkdir -p "${dst%/*}"
    if fb_update "$dst" "$mode" cat "$src"; then info "installed /${rel} (mode ${mode})"; fi
}

# _fb_rewrite WHEN FILE MODE FILTER [ARG...]: the one temp-file-and-rename every file the scripts
# write goes through. FILTER prints the new content into a temp file in FILE's directory, which gets
# MODE and is then renamed over FILE: a reader sees the old FILE or the new one, never a part, and
# never the new content with the old mode. WHEN=always, or changed: a FILE that already holds
# exactly that is left alone but for MODE (status 1), and FB_CHECK (a command given the temp file)
# must accept the new content before it replaces FILE. A failure leaves FILE as it was and removes
# the temp file (so does a die in FILTER or FB_CHECK); its status is 2 or more with WHEN=changed,
# the failed command's with always. FILTER runs in this shell, with errexit off.
_fb_rewrite() {
    local when="$1" dst="$2" mode="$3" tmp rc=0
    shift 3
    tmp="$(mktemp "${dst%/*}/.${dst##*/}.XXXXXX")" || return 2
    FB_REWRITE_TMP="$tmp"
    "$@" >"$tmp" || rc=$?
    if [ "$rc" -eq 0 ] && [ "$when" = changed ] && [ -f "$dst" ] && cmp -s "$tmp" "$dst"; then
        rm -f "$tmp"
        FB_REWRITE_TMP=""
        chmod "$mode" "$dst" || return 2
        return 1
    fi
    if [ "$rc" -eq 0 ] && [ "$when" = changed ] && [ -n "${FB_CHECK:-}" ]; then "$FB_CHECK" "$tmp" || rc=$?; fi
    if [ "$rc" -eq 0 ]; then { chmod "$mode" "$tmp" && mv -f "$tmp" "$dst"; } || rc=$?; fi
    if [ "$rc" -ne 0 ]; then rm -f "$tmp"; fi
    FB_REWRITE_TMP=""
    if [ "$when" = changed ] && [ "$rc" -eq 1 ]; then rc=2; fi
    return "$rc"
}

# fb_rewrite FILE MODE FILTER [ARG...]: FILE becomes what FILTER prints, with MODE, atomically (see
# _fb_rewrite). On failure FILE is as it was and the status is the failed command's.
fb_rewrite() { _fb_rewrite always "$@"; }

# fb_update FILE MODE FILTER [ARG...]: fb_rewrite only when FILTER's output differs from FILE:
# status 0 when FILE was rewritten, 1 when it already held exactly that (its MODE is still set).
# With FB_CHECK=CMD, `CMD TEMPFILE` must accept the new content first. A failure stops the step,
# so that `if fb_update ...` never takes one for "unchanged".
fb_update() {
    local rc=0
    _fb_rewrite changed "$@" || rc=$?
    [ "$rc" -le 1 ] || die "could not write $1 ('${*:3}' failed)"
    return "$rc"
}

# fb_write_file DEST MODE < content: DEST becomes stdin, with MODE, atomically.
fb_write_file() { fb_rewrite "$1" "$2" cat; }

# _fb_kept_then LINE KEEP [ARG...]: what KEEP prints, then LINE.
_fb_kept_then() {
    local line="$1"
    shift
    "$@" && printf '%s\n' "$line"
}

# fb_replace_line FILE MODE LINE KEEP [ARG...]: "the line for X in FILE is LINE": FILE (created when
# missing) becomes the lines of it that `KEEP ARG... FILE` prints (all but the one for X), then LINE.
# Status 1 when LINE is in FILE already (nothing changed).
fb_replace_line() {
    local file="$1" mode="$2" line="$3"
    shift 3
    touch "$file"
    if grep -qxF -- "$line" "$file"; then return 1; fi
    fb_update "$file" "$mode" _fb_kept_then "$line" "$@" "$file"
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

# _fb_probe_refusal WHAT DEV MESSAGE: log that WHAT may not run because DEV could not be probed.
_fb_probe_refusal() {
    fb_report_failure "refusing to run $1: cannot tell whether $2 is blank: $3" \
        "nothing was written. Fix what keeps the probe from reading $2 (is the device there and readable?), then rerun 'an-cluster-firstboot run'"
}

# fb_probe_failed WHAT DEV MESSAGE: stop the step because DEV could not be probed (nothing written).
fb_probe_failed() {
    _fb_probe_refusal "$@"
    fb_stop
}

# fb_destructive_verdict KEY DEV EXPECTED WHAT [ADOPT]: may the one-time command KEY run on DEV?
#   0  run: the device is blank (the intent is recorded: go ahead);
#   1  done: our own EXPECTED signature is there from an earlier, interrupted run;
#   2  refused: anything else, or a probe failed; the reason and how to proceed are logged as errors.
# ADOPT is the command that makes a foreign EXPECTED signature ours (default: record the intent).
fb_destructive_verdict() {
    local key="$1" dev="$2" expected="$3" what="$4" adopt="${5:-}" sigs
    sigs="$(fb_signatures "$dev")" || { _fb_probe_refusal "$what" "$dev" "$sigs"; return 2; }
    if [ -z "$sigs" ]; then
        fb_intent_set "$key" "$dev"
        return 0
    fi
    if fb_intent_has "$key" && [ "$sigs" = "$expected" ]; then
        info "$dev already carries the $expected signature this node created earlier: not running $what again"
        return 1
    fi
    local keep=""
    if [ "$sigs" = "$expected" ]; then
        keep="; if it is the $expected you mean to keep, adopt it with '${adopt:-echo $dev > $FB_INTENT_DIR/$key}' and rerun"
    fi
    fb_report_failure "refusing to run $what: $dev already carries data (signature: $sigs)" \
        "nothing was written. If that data is expendable, wipe it yourself ('wipefs -a $dev') and rerun 'an-cluster-firstboot run'${keep}"
    return 2
}

# fb_guard_destructive KEY DEV EXPECTED WHAT [ADOPT]: fb_destructive_verdict, where a refusal stops
# the step: status 0 run, 1 done. Call it as a condition (`if fb_guard_destructive ...; then`), in
# the step's own shell: never in $(...), where the exit would stop only the subshell.
fb_guard_destructive() {
    local rc=0
    fb_destructive_verdict "$@" || rc=$?
    [ "$rc" -le 1 ] || fb_stop
    return "$rc"
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
    if [ -n "${FB_REWRITE_TMP:-}" ]; then rm -f "$FB_REWRITE_TMP"; fi
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
