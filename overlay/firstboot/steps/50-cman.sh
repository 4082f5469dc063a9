#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 50-cman: cluster.conf in place (0640: it holds the fence passwords), cman on and started, and a
# bounded wait until both nodes are members and the cluster is quorate. Seed: "Setup cman", "Fencing".
# The <rm> section (VMs, storage services) is left out here and activated by 90-rgmanager with a
# config_version bump, the way a running cluster takes any change.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"
fb_step_init 50-cman

# cluster.conf without its <rm>...</rm> section (or <rm/>), as cman's first configuration.
strip_rm() {
    awk '
        /<rm[ \t>]/ || /<rm\/>/ { if ($0 ~ /<rm[^>]*\/>/) next; skip = 1 }
        skip { if ($0 ~ /<\/rm>/) skip = 0; next }
        { print }' "$1"
}

config_version_of() {
    sed -n 's/.*<cluster[^>]*config_version="\([0-9][0-9]*\)".*/\1/p' "$1" | head -n 1
}

install_cluster_conf() {
    local src dst tmp
    src="${FB_STAGE}/etc/cluster/cluster.conf"
    dst="$(fb_path /etc/cluster/cluster.conf)"
    [ -f "$src" ] || die "$src is missing" "restage the node files (the install media has them under an-cluster/nodes/$AN_NODE_NAME/)"
    mkdir -p "${dst%/*}"
    # Once 90-rgmanager pushed the full configuration (higher config_version), never go back.
    if [ -f "$dst" ] && [ "$(config_version_of "$dst")" -gt "$(config_version_of "$src")" ] 2>/dev/null; then
        chmod 0640 "$dst"
        return 0
    fi
    tmp="$(fb_mktemp)"
    strip_rm "$src" >"$tmp"
    if [ -f "$dst" ] && cmp -s "$tmp" "$dst"; then
        rm -f "$tmp"
        chmod 0640 "$dst"
        return 0
    fi
    if command -v ccs_config_validate >/dev/null 2>&1; then
        ccs_config_validate -l -f "$tmp" >/dev/null || { rm -f "$tmp"; die "the staged cluster.conf does not validate" "run 'ccs_config_validate -f $src' to see why"; }
    fi
    fb_write_file "$dst" 0640 <"$tmp"
    rm -f "$tmp"
    info "installed /etc/cluster/cluster.conf (config_version $(config_version_of "$dst"), without <rm> for now)"
}

# Both nodes listed as members (cman_tool nodes: "Sts" column M) and the cluster quorate.
both_members_quorate() {
    local st members
    st="$(cman_tool status 2>/dev/null)" || return 1
    case "$st" in *"Activity blocked"*) return 1 ;; esac
    printf '%s\n' "$st" | grep -q '^Membership state: Cluster-Member' || return 1
    members="$(cman_tool nodes 2>/dev/null | awk 'NR > 1 && $2 == "M" {print $NF}')" || return 1
    printf '%s\n' "$members" | grep -qxE "${AN_NODE_FQDN//./\\.}|${AN_NODE_NAME}" || return 1
    printf '%s\n' "$members" | grep -qxE "${AN_PEER_FQDN//./\\.}|${AN_PEER_NAME}" || return 1
}

main() {
    install_cluster_conf
    chkconfig cman on
    fb_ensure_cman
    fb_wait "both $AN_NODE_NAME and $AN_PEER_NAME to be cman members and the cluster quorate" both_members_quorate
    info "cman: both nodes joined, quorate"
}

main "$@"
