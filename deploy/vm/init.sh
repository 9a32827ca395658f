#!/bin/busybox sh
# /init of the hacluster QEMU guest (built into the initramfs by prepare.sh).
# Stage 1 (PID 1 in the initramfs): load the virtio and 9p modules, mount the host's root
# read-only over 9p with tmpfs on the writable places, the repo and a writable share at
# their host paths, and the unpacked kernel package; then switch_root into the host's root.
# Stage 2 (PID 1 in the host's root): load IPVS, bring up lo, run the agent on the
# virtio-serial port, and power off when it exits; with hacluster.init=systemd, start
# systemd as PID 1 instead, which runs the agent as a service.
# Kernel command line: hacluster.repo=DIR hacluster.share=DIR [hacluster.python=PATH]
#   [hacluster.init=systemd]
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

param() {
    for word in $(cat /proc/cmdline); do
        case $word in "$1="*) echo "${word#*=}"; return ;; esac
    done
}

fail() {
    echo "hacluster-vm: $*" >&2
    /bin/busybox sleep 1
    /bin/busybox poweroff -f
}

OPTS_RO=trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro
OPTS_RW=trans=virtio,version=9p2000.L,msize=512000

if [ "$1" != stage2 ]; then
    /bin/busybox mkdir -p /usr/bin /usr/sbin /sbin
    /bin/busybox --install -s
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev
    while read -r mod; do
        insmod "/modules/$mod" || fail "cannot load $mod"
    done </modules/load
    repo=$(param hacluster.repo)
    share=$(param hacluster.share)
    [ -n "$repo" ] && [ -n "$share" ] || fail "hacluster.repo= and hacluster.share= are required"
    mount -t 9p -o "$OPTS_RO" hostroot /newroot || fail "cannot mount the host root"
    for dir in /tmp /var/tmp; do
        mount -t tmpfs -o mode=1777 tmpfs "/newroot$dir" || fail "cannot mount tmpfs on $dir"
    done
    mount -t tmpfs -o mode=755 tmpfs /newroot/run || fail "cannot mount tmpfs on /run"
    mount --move /proc /newroot/proc
    mount --move /sys /newroot/sys
    mount --move /dev /newroot/dev
    mkdir -p /newroot/dev/pts /newroot/dev/shm
    mount -t devpts devpts /newroot/dev/pts
    mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
    mkdir -p /newroot/run/hacluster-vm/kernel
    mount -t 9p -o "$OPTS_RO" kernel /newroot/run/hacluster-vm/kernel || fail "cannot mount the kernel"
    mkdir -p "/newroot$share" 2>/dev/null
    mount -t 9p -o "$OPTS_RW" share "/newroot$share" || fail "cannot mount the share on $share"
    mkdir -p "/newroot$repo" 2>/dev/null
    mount -t 9p -o "$OPTS_RO" repo "/newroot$repo" || fail "cannot mount the repo on $repo"
    cp /init /newroot/run/hacluster-vm/init
    exec switch_root /newroot /bin/busybox sh /run/hacluster-vm/init stage2
    fail "switch_root failed"
fi

# Stage 2: the kernel's own modules live under /run/hacluster-vm/kernel, so modprobe (and
# the kernel's automatic module loading, e.g. of a scheduler) is pointed there.
KROOT=/run/hacluster-vm/kernel
MODPROBE=
for path in /usr/sbin/modprobe /sbin/modprobe /usr/bin/modprobe /bin/modprobe; do
    if [ -x "$path" ]; then MODPROBE=$path; break; fi
done
[ -n "$MODPROBE" ] || echo "hacluster-vm: kmod's modprobe is missing: IPVS cannot load" >&2
cat >/run/hacluster-vm/modprobe <<WRAPPER
#!/bin/busybox sh
exec $MODPROBE -d $KROOT "\$@"
WRAPPER
chmod 755 /run/hacluster-vm/modprobe
echo /run/hacluster-vm/modprobe >/proc/sys/kernel/modprobe
mods=ip_vs
for path in "$KROOT/lib/modules/$(uname -r)"/kernel/net/netfilter/ipvs/ip_vs_*.ko*; do
    name=${path##*/}
    name=${name%%.ko*}
    case $name in ip_vs_ftp|ip_vs_pe_*) continue ;; esac
    mods="$mods $name"
done
/run/hacluster-vm/modprobe -a $mods || echo "hacluster-vm: some IPVS modules did not load" >&2
/bin/busybox hostname hacluster-vm
ip link set lo up
repo=$(param hacluster.repo)
share=$(param hacluster.share)
python=$(param hacluster.python)
[ -n "$python" ] || python=$repo/.venv/bin/python
cd "$share"
if [ "$(param hacluster.init)" = systemd ]; then
    # systemd as PID 1: the agent becomes a service of its own (hacluster-vm.target), and
    # the guest powers off when it exits.
    mkdir -p /run/systemd/system
    cat >/run/systemd/system/hacluster-vm-agent.service <<UNIT
[Unit]
Description=hacluster VM agent on the virtio-serial port
DefaultDependencies=no
SuccessAction=poweroff-immediate
FailureAction=poweroff-immediate

[Service]
WorkingDirectory=$share
Environment=HOME=/root PYTHONPATH=$repo PYTHONDONTWRITEBYTECODE=1
ExecStart=$python -m hacluster.lab.vm_agent
UNIT
    cat >/run/systemd/system/hacluster-vm.target <<UNIT
[Unit]
Description=hacluster VM guest under systemd
Wants=hacluster-vm-agent.service
AllowIsolate=yes
UNIT
    echo "hacluster-vm: starting systemd at $(cut -d' ' -f1 /proc/uptime) s" >&2
    # The unit is named here: the host's root may be a container's (/.dockerenv), and
    # systemd, believing it runs in one, ignores the kernel command line.
    exec /lib/systemd/systemd --unit=hacluster-vm.target
fi
echo "hacluster-vm: starting agent ($python) at $(cut -d' ' -f1 /proc/uptime) s" >&2
HOME=/root PYTHONPATH=$repo PYTHONDONTWRITEBYTECODE=1 "$python" -m hacluster.lab.vm_agent
echo "hacluster-vm: agent exited ($?)" >&2
/bin/busybox sync
/bin/busybox poweroff -f
