#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# 50-cman: cluster.conf in place (0640: it holds the fence passwords), a bounded, authenticated
# rendezvous with the peer (lib/rendezvous: both nodes start cman together, so fenced on the first
# one never fences a peer that is still installing; never clean_start), cman on and started, and a
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

install_cluster_conf() {
    local src="$FB_STAGED_CLUSTER_CONF" dst
    dst="$(fb_path /etc/cluster/cluster.conf)"
    [ -f "$src" ] || die "$src is missing" "restage the node files (the install media has them under an-cluster/nodes/$AN_NODE_NAME/)"
    mkdir -p "${dst%/*}"
    # Once 90-rgmanager pushed the full configuration (higher config_version), never go back.
    if [ -f "$dst" ] && [ "$(fb_config_version_of "$dst")" -gt "$(fb_config_version_of "$src")" ] 2>/dev/null; then
        chmod 0640 "$dst"
        return 0
    fi
    if fb_install_cluster_conf "the staged cluster.conf" strip_rm "$src"; then
        info "installed /etc/cluster/cluster.conf (config_version $(fb_config_version_of "$dst"), without <rm> for now)"
    fi
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

# Meet the peer (both nodes run this step) before the first cman start: fenced on the first node
# fences a node that has not joined within post_join_delay (cluster 3.0.12 fence/fenced/recover.c).
# Once met, the marker stays: after a power cut the peer is already running cman (or will at its
# next boot), and waiting for it here again would wait for nobody. The listener stays up in the
# background (bounded, FB_TIMEOUT) for a peer whose answer was lost or that was cut off right after
# meeting us and comes back without its marker.
rendezvous() {
    local marker="$FB_STATE_DIR/cman-rendezvous.done" key rc=0
    if fb_service_running cman || [ -f "$marker" ]; then return 0; fi
    key="$FB_STAGED_CLUSTER_CONF"
    info "waiting (up to ${FB_TIMEOUT}s) for $AN_PEER_NAME to reach the cman rendezvous (tcp $AN_RENDEZVOUS_PORT on the BCN, $AN_PEER_BCN_IP): cman starts on both nodes together"
    python "$AN_FIRSTBOOT_LIBEXEC/lib/rendezvous" "$AN_NODE_NAME" "$AN_PEER_NAME" "$AN_NODE_BCN_IP" "$AN_PEER_BCN_IP" \
        "$AN_RENDEZVOUS_PORT" "$key" "$FB_TIMEOUT" "$FB_TIMEOUT" || rc=$?
    case "$rc" in
        0) ;;
        2) FB_EXIT=$FB_EXIT_TEMPFAIL die "$AN_PEER_NAME did not come to the cman rendezvous within ${FB_TIMEOUT}s: cman not started (alone, fenced would fence the peer after post_join_delay)" \
            "make sure $AN_PEER_NAME is installed and its firstboot runs ('an-cluster-firstboot status' there) and that tcp $AN_RENDEZVOUS_PORT is open between the BCN addresses; if $AN_PEER_NAME already runs the cluster, 'touch $marker' and rerun" ;;
        *) die "the cman rendezvous could not run (exit $rc)" "see /var/log/an-cluster-firstboot.log" ;;
    esac
    date '+%Y-%m-%d %H:%M:%S' | fb_write_file "$marker" 0644
    info "$AN_PEER_NAME is at the rendezvous: starting cman"
}

main() {
    install_cluster_conf
    # xend's bridges first: starting it would take the BCN down under a just-started cman
    fb_service_running cman || fb_ensure_xend
    rendezvous
    chkconfig cman on
    fb_ensure_cman
    fb_wait "both $AN_NODE_NAME and $AN_PEER_NAME to be cman members and the cluster quorate" both_members_quorate
    info "cman: both nodes joined, quorate"
}

main "$@"
