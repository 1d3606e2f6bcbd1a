#!/bin/sh
# Runs inside the test VM (test/packages), as root under systemd, from the
# test disk mounted on /mnt/test: installs, exercises and removes the .deb.
# It waits for conditions with deadlines and writes what it saw into out/;
# packages_test.go reads out/ back and decides pass or fail.
set -u
D=/mnt/test
O=$D/out
unit=otelcol-execsnoop.service
t0=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
log() { echo "guest +$(($(date +%s) - t0))s: $*"; }
# wait_for DESCRIPTION SECONDS COMMAND...: polls until COMMAND succeeds,
# twice a second: each poll is a few processes (systemctl, journalctl),
# which under TCG take CPU from the service being waited for.
wait_for() {
	desc=$1 secs=$2
	shift 2
	end=$(($(date +%s) + secs))
	until "$@" >/dev/null 2>&1; do
		if [ "$(date +%s)" -ge "$end" ]; then
			log "TIMEOUT after ${secs}s: $desc"
			echo "$desc" >>"$O/timeouts"
			return 1
		fi
		sleep 0.5
	done
	log "ok: $desc"
}
invocation() { systemctl show -p InvocationID --value $unit; }
# ready: the current run of the service logged the collector's ready line.
ready() { journalctl -q -o cat _SYSTEMD_INVOCATION_ID="$(invocation)" | grep -q 'Everything is ready'; }
# sink FILE: an OTLP/gRPC receiver on 127.0.0.1:4317 (the packaged config's
# default endpoint) writing what it gets to FILE; a transient unit.
sink() {
	systemd-run -q --unit=sink -E SINK_FILE="$1" "$D/otelcol-execsnoop" --config="$D/sink.yaml"
	wait_for "sink listening" 120 sh -c "journalctl -q -o cat -u sink _SYSTEMD_INVOCATION_ID=\$(systemctl show -p InvocationID --value sink) | grep -q 'Everything is ready'"
}
# The service traces this script's own commands too: a grep whose argv held
# the marker would find its own exec record in the sink. So the pattern is
# passed in a file, and no command line names what a check looks for.
pattern=/run/guest-pattern
has() { printf '%s\n' "$2" >$pattern && grep -q -F -f $pattern -- "$1"; }
count() { printf '%s\n' "$2" >$pattern && grep -o -E -f $pattern -- "$1" 2>/dev/null | sort -u | wc -l; }
evidence() { # NAME: snapshot of the service's state
	systemctl show $unit >"$O/$1.show"
	pid=$(systemctl show -p MainPID --value $unit)
	echo "$pid" >"$O/$1.pid"
	if [ "$pid" != 0 ]; then
		cp "/proc/$pid/status" "$O/$1.status"
		tr '\0' '\n' <"/proc/$pid/environ" >"$O/$1.environ"
		cat "/sys/fs/cgroup$(sed -n 's/^0:://p' "/proc/$pid/cgroup")/memory.max" >"$O/$1.memory.max"
	fi
}

uname -r >"$O/uname"
grep -q localhost /etc/hosts 2>/dev/null || printf '127.0.0.1 localhost\n::1 localhost\n' >>/etc/hosts

log "1. sink, then install the previous release with apt"
sink "$O/sink-1.json"
apt-get install -y "$D/previous.deb" >"$O/install-previous.log" 2>&1
echo $? >"$O/install-previous.rc"
wait_for "service active after install" 120 systemctl is-active $unit
wait_for "service ready (first start)" 180 ready
evidence installed
getent passwd otelcol-execsnoop >"$O/passwd"
stat -c '%U:%G %a' /var/lib/otelcol-execsnoop >"$O/statedir"
systemctl is-enabled $unit >"$O/enabled" 2>&1
systemd-analyze security --no-pager $unit >"$O/security.txt" 2>&1
systemd-analyze verify $unit >"$O/verify.txt" 2>&1
echo $? >"$O/verify.rc"

log "2. an exec with the test's argv reaches the sink"
marker=$(cat "$D/marker")
xargs -0 -a "$D/argv" /bin/true
echo $? >"$O/argv.rc"
wait_for "exec record in the sink" 120 has "$O/sink-1.json" "$marker"

log "3. records queued while the sink is down survive systemctl restart"
systemctl stop sink
systemctl reset-failed sink 2>/dev/null
before=$(invocation)
i=0
while [ $i -lt 20 ]; do
	/bin/true "queued-across-restart-$i"
	i=$((i + 1))
done
restarted=$(date +%s)
systemctl restart $unit
echo $? >"$O/restart.rc"
[ "$(invocation)" != "$before" ] && echo new >"$O/restart.invocation"
wait_for "service ready after restart" 180 ready
sink "$O/sink-2.json"
all_queued() { [ "$(count "$O/sink-2.json" 'queued-across-restart-[0-9]+')" -eq 20 ]; }
# The deadline covers gRPC's reconnect back-off and the exporter's retry
# interval (up to 30 s) after the sink comes back.
wait_for "20 queued records after the restart" 300 all_queued ||
	journalctl -q --no-pager -o short-unix -u $unit -u sink --since "@$restarted" >"$O/queue.journal" 2>&1

log "4. upgrade to the new release keeps a changed config"
sed -i 's/timeout: 200ms/timeout: 300ms # changed by the package test/' /etc/otelcol-execsnoop/config.yaml
before=$(invocation)
apt-get install -y -o Dpkg::Options::=--force-confold "$D/new.deb" >"$O/upgrade.log" 2>&1
echo $? >"$O/upgrade.rc"
dpkg-query -W -f '${Version}\n' otelcol-execsnoop >"$O/upgrade.version"
cp /etc/otelcol-execsnoop/config.yaml "$O/upgrade.config.yaml"
ls /etc/otelcol-execsnoop/ >"$O/upgrade.etc"
[ "$(invocation)" != "$before" ] && echo new >"$O/upgrade.invocation"
wait_for "service ready after the upgrade" 180 ready
evidence upgraded
/bin/true after-upgrade-marker
wait_for "exec record after the upgrade" 120 has "$O/sink-2.json" after-upgrade-marker

log "5. a config error: one line naming the field, and no restart"
cfg=/etc/otelcol-execsnoop/config.yaml
cp $cfg /root/config.good
sed -i 's/^  execsnoop: {}/  execsnoop:\n    no_such_field: 1/' $cfg
systemctl restart $unit
wait_for "service failed on the config error" 120 sh -c "[ \$(systemctl show -p ActiveState --value $unit) = failed ]"
systemctl status --no-pager -n 20 $unit >"$O/bad.status" 2>&1
journalctl -q --no-pager -o cat _SYSTEMD_INVOCATION_ID="$(invocation)" >"$O/bad.journal" 2>&1
systemctl show $unit >"$O/bad.show"

cp /root/config.good $cfg

log "6. a missing kernel feature (BTF hidden): restarted with back-off until the start limit"
# A start failure that is not a config error: a drop-in hides the kernel's
# BTF from the service, as on a kernel built without CONFIG_DEBUG_INFO_BTF.
# The unit's own restart numbers are used, read back with systemctl show.
dropin=/run/systemd/system/$unit.d/test-no-btf.conf
mkdir -p "$(dirname $dropin)"
printf '[Service]\nInaccessiblePaths=/sys/kernel/btf\n' >$dropin
systemctl daemon-reload
# usec TIMESPAN: microseconds ("5s", "10min" as systemctl show prints them)
usec() { systemd-analyze timespan "$1" | sed -n 's/^ *[^ ]*s: \([0-9][0-9]*\)$/\1/p'; }
burst=$(systemctl show -P StartLimitBurst $unit)
interval=$(usec "$(systemctl show -P StartLimitIntervalUSec $unit)")
printf 'StartLimitBurst=%s\nStartLimitIntervalUSec=%s\nRestartUSec=%s\n' "$burst" "$interval" \
	"$(usec "$(systemctl show -P RestartUSec $unit)")" >"$O/nobtf.limits"
# If the limit is not hit within StartLimitIntervalSec it never will be.
since=$(date +%s)
systemctl reset-failed $unit
systemctl start $unit
# Between attempts the unit is activating (auto-restart); failed once
# systemd gives up. systemd 252 keeps Result=exit-code (the last attempt's)
# when the limit stops an automatic restart; the journal says "Start
# request repeated too quickly".
wait_for "failed for good (start limit) without BTF" $((interval / 1000000 + 120)) sh -c "[ \$(systemctl show -P ActiveState $unit) = failed ]"
systemctl show $unit >"$O/nobtf.show"
systemctl status --no-pager -n 20 $unit >"$O/nobtf.status" 2>&1
# While the limit holds, a manual start is refused too.
systemctl start $unit >"$O/nobtf.manual.log" 2>&1
echo $? >"$O/nobtf.manual.rc"
systemctl show -p ActiveState -p Result -p NRestarts $unit >"$O/nobtf.manual.show"
journalctl -q --no-pager -o short-unix -u $unit --since "@$since" >"$O/nobtf.journal" 2>&1

rm -f $dropin
systemctl daemon-reload
systemctl reset-failed $unit
systemctl start $unit
wait_for "service ready with BTF back and the config repaired" 180 ready
systemctl show -P ActiveState $unit >"$O/nobtf.repaired"

log "7. apt remove keeps the config"
apt-get remove -y otelcol-execsnoop >"$O/remove.log" 2>&1
echo $? >"$O/remove.rc"
dpkg-query -W -f '${Status}\n' otelcol-execsnoop >"$O/remove.status" 2>&1
cp /etc/otelcol-execsnoop/config.yaml "$O/remove.config.yaml" 2>/dev/null
ls /usr/bin/otelcol-execsnoop /usr/bin/execsnoop >"$O/remove.binaries" 2>&1
systemctl is-active $unit >"$O/remove.active" 2>&1
ps=$(for p in /proc/[0-9]*; do [ "$(stat -c %U "$p" 2>/dev/null)" = otelcol-execsnoop ] && echo "$p"; done)
echo "$ps" >"$O/remove.processes"

log "8. apt purge removes the user, the state and the config"
apt-get purge -y otelcol-execsnoop >"$O/purge.log" 2>&1
echo $? >"$O/purge.rc"
dpkg-query -W -f '${Status}\n' otelcol-execsnoop >"$O/purge.status" 2>&1
getent passwd otelcol-execsnoop >"$O/purge.passwd"
getent group otelcol-execsnoop >"$O/purge.group"
find / -xdev \( -path /mnt -o -path /proc \) -prune -o -name '*otelcol-execsnoop*' -print >"$O/purge.leftovers" 2>/dev/null
systemctl stop sink
log "done"
