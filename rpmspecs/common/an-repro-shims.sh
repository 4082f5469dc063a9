#!/bin/sh
# an-repro-shims.sh EPOCH DIR: write date/gzip/hostname/whoami/dnsdomainname wrappers into DIR.
#
# Fedora 13 builds with rpm 4.8 and 2010 build systems that know nothing of SOURCE_DATE_EPOCH:
# the kernel's mkcompile_h, Xen's compile.h and DRBD's drbd_buildtag.c stamp `date`, the user
# and the host into the binaries, and `gzip` without -n records a time in every header. With DIR
# first in PATH during %build those all see one fixed time, user and host, so a rebuild gives
# the same bytes. The same file is shipped in every spec directory that uses it.
set -eu
epoch=$1
dir=$2
mkdir -p "$dir"

cat > "$dir/date" <<EOS
#!/bin/sh
# Leave explicit dates and clock setting alone; otherwise answer with the fixed build time.
for a in "\$@"; do
    case \$a in -d*|--date*|-r*|--reference*|-s*|--set*|-f*|--file*) exec /bin/date "\$@" ;; esac
done
exec /bin/date -u -d @$epoch "\$@"
EOS
cat > "$dir/gzip" <<'EOS'
#!/bin/sh
exec /bin/gzip -n "$@"
EOS
cat > "$dir/hostname" <<'EOS'
#!/bin/sh
echo build.an-cluster
EOS
cat > "$dir/dnsdomainname" <<'EOS'
#!/bin/sh
echo an-cluster
EOS
cat > "$dir/whoami" <<'EOS'
#!/bin/sh
echo mockbuild
EOS
chmod 0755 "$dir/date" "$dir/gzip" "$dir/hostname" "$dir/dnsdomainname" "$dir/whoami"
