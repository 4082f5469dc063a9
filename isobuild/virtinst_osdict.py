"""What Fedora 13's virt-install (python-virtinst 0.500.3) knows as --os-type / --os-variant.

No imports: the model checks vms[].os_variant against it, and the firstboot harness's virt-install
shim (run without site-packages) accepts exactly these.
"""

# --os-variant values python-virtinst 0.500.3 (Fedora 13) knows, by --os-type: OS_TYPES in
# virtinst/osdict.py at virtinst-0_500_3 (solaris9/10 are also filed under unix there: solaris_compat).
VIRTINST_OS_VARIANTS: dict[str, tuple[str, ...]] = {
    "linux": ("rhel2.1", "rhel3", "rhel4", "rhel5", "rhel5.4", "rhel6", "fedora5", "fedora6", "fedora7",
              "fedora8", "fedora9", "fedora10", "fedora11", "fedora12", "fedora13", "sles10", "sles11",
              "mandriva2009", "mandriva2010", "mes5", "mes5.1", "debianetch", "debianlenny", "debiansqueeze",
              "ubuntuhardy", "ubuntuintrepid", "ubuntujaunty", "ubuntukarmic", "generic24", "generic26",
              "virtio26"),
    "windows": ("winxp", "winxp64", "win2k", "win2k3", "win2k8", "vista", "win7"),
    "solaris": ("solaris9", "solaris10", "opensolaris"),
    "unix": ("freebsd6", "freebsd7", "openbsd4", "solaris9", "solaris10"),
    "other": ("msdos", "netware4", "netware5", "netware6", "generic"),
}
