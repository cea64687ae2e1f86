#!/bin/sh
# A real Plasma 6.3 desktop (a Debian 13 "trixie" tree) under Xvfb, for the tray applet.
# Usage (root): plasma6-lab.sh ensure|up|applet [CMD...]|sh CMD...|down
#   ensure   build the tree once (debootstrap + packages, ≈ 2 min, 1.8 GB), kept in $R
#   up       start Xvfb, dbus, kwin_x11, kded6 (the SNI watcher) and plasmashell; waits for them
#            (NO_PLASMA=1: Xvfb, dbus and kwin_x11 only)
#   applet   a command (default: the applet) in the session's environment, from $PROJECT
#   down     stop every process whose root is the tree (all were started here), by pid
# Env: R (tree, default /var/cache/hotspotguard-tests/trixie-plasma), MIRROR (default: the host's
#      apt mirror), PROJECT (bound into the tree at the same path), UXBIND (more dirs to bind),
#      NETNS (run the applet in that network namespace), APPLET_LANG.
# Nothing touches the host's /etc, network or D-Bus: every command runs chrooted in a private
# mount namespace whose mounts vanish with its last process.
set -e
R=${R:-/var/cache/hotspotguard-tests/trixie-plasma}
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PROJECT=${PROJECT:-$(pwd)}
S=/tmp/uxs   # the session's directory, inside the tree
STAMP=.hotspotguard-plasma-3   # bump when PACKAGES change: an older tree gets the new ones

inchroot() {
  unshare -m --propagation private sh -c '
    R=$0
    mount -t proc proc $R/proc
    mount -t sysfs sys $R/sys
    mount --bind /dev $R/dev
    mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
    mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
    mount -t tmpfs -o mode=755 tmpfs $R/run
    for b in $UXBIND; do mkdir -p $R$b; mount --bind $b $R$b; done
    exec chroot $R /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb "$@"' "$R" "$@"
}

PACKAGES="plasma-workspace plasma-desktop kwin-x11 xvfb dbus-daemon dbus-x11 fonts-dejavu-core
  python3-pyside6.qtcore python3-pyside6.qtgui python3-pyside6.qtwidgets python3-pyside6.qtsvg
  python3-pyside6.qtsvgwidgets python3-pyside6.qtdbus python3-dbus-next python3-qasync
  python3-pyroute2 python3-nftables nftables iptables iproute2 xdotool x11-utils
  fonts-wqy-microhei polkitd polkit-kde-agent-1"

session_script() {
  cat > "$1/uxsession.sh" <<'EOT'
#!/bin/sh
S=/tmp/uxs; mkdir -p $S/home $S/rt; chmod 700 $S/rt
cat > $S/env.sh <<EOV
export DISPLAY=:42 HOME=$S/home XDG_RUNTIME_DIR=$S/rt XDG_CONFIG_HOME=$S/home/.config XDG_DATA_HOME=$S/home/.local/share XDG_CACHE_HOME=$S/home/.cache
export XDG_CURRENT_DESKTOP=KDE KDE_SESSION_VERSION=6 KDE_FULL_SESSION=true XDG_SESSION_TYPE=x11 XDG_SESSION_DESKTOP=KDE DESKTOP_SESSION=plasma
export DBUS_SESSION_BUS_ADDRESS=unix:path=$S/rt/bus LANG=C.UTF-8 QT_QPA_PLATFORM=xcb KWIN_COMPOSE=N PATH=/usr/sbin:/usr/bin:/sbin:/bin
EOV
. $S/env.sh
Xvfb :42 -screen 0 1366x768x24 +extension GLX -nolisten tcp -noreset > $S/xvfb.log 2>&1 & echo $! > $S/xvfb.pid
# the session bus: Debian's session.conf, plus a second socket outside the 0700 runtime dir that
# the polkit test's session user may use too (tests/plasma/polkit_session.py)
cat > $S/session.conf <<EOC
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <include>/usr/share/dbus-1/session.conf</include>
  <listen>unix:path=$S/rt/bus</listen>
  <listen>unix:path=$S/bus</listen>
  <policy context="default"><allow user="*"/></policy>
</busconfig>
EOC
dbus-daemon --config-file=$S/session.conf --nofork --nopidfile > $S/dbus.log 2>&1 & echo $! > $S/dbus.pid
while [ ! -S $S/rt/bus ] || [ ! -S /tmp/.X11-unix/X42 ]; do sleep 0.05; done
kwin_x11 --replace > $S/kwin.log 2>&1 & echo $! > $S/kwin.pid
if [ -n "$NO_PLASMA" ]; then  # the login race: Plasma's parts come later, started by the caller
  echo "bare $(date +%s.%N)" >> $S/t-names; echo "bare $(date +%s.%N)" >> $S/t-names; wait; exit
fi
kded6 > $S/kded.log 2>&1 & echo $! > $S/kded.pid
plasmashell --no-respawn > $S/plasmashell.log 2>&1 & echo $! > $S/plasmashell.pid
has() { dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.ListNames 2>/dev/null | grep -q "\"$1\""; }
for n in org.freedesktop.Notifications org.kde.plasmashell; do
  i=0; while ! has $n && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
  echo "$n $(date +%s.%N)" >> $S/t-names
done
wait
EOT
  chmod +x "$1/uxsession.sh"
}

# the desktop's user (tests/plasma/polkit_session.py logs it in): in the tree's /etc/passwd, as a
# real user is, so that every program of the session (its bus too) can look it up
desk_user() {
  grep -q '^hsgdesk:' "$1/etc/passwd" || R="$1" UXBIND="" "$0" sh useradd -M -d /tmp/uxs/user \
    -s /bin/sh -c "Plasma lab user" hsgdesk
}

case "$1" in
ensure)
  if [ -f "$R/$STAMP" ]; then session_script "$R"; desk_user "$R"; exit 0; fi
  if ls "$R"/.hotspotguard-plasma-* >/dev/null 2>&1; then  # an older tree: add what is new
    R="$R" UXBIND="" "$0" sh apt-get update -qq
    R="$R" UXBIND="" "$0" sh DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES > "$R.log" 2>&1 || { tail -20 "$R.log"; exit 1; }
    R="$R" UXBIND="" "$0" sh apt-get clean
    rm -f "$R"/.hotspotguard-plasma-*; touch "$R/$STAMP"; session_script "$R"; desk_user "$R"; exit 0
  fi
  T="$R.building"; rm -rf "$T"; mkdir -p "$(dirname "$R")"
  debootstrap --variant=minbase trixie "$T" "$MIRROR" > "$T.log" 2>&1 || { tail -20 "$T.log"; exit 1; }
  cp /etc/resolv.conf "$T/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' > "$T/usr/sbin/policy-rc.d"; chmod +x "$T/usr/sbin/policy-rc.d"
  R="$T" UXBIND="" "$0" sh apt-get update -qq
  R="$T" UXBIND="" "$0" sh DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES >> "$T.log" 2>&1 || { tail -20 "$T.log"; exit 1; }
  R="$T" UXBIND="" "$0" sh apt-get clean
  session_script "$T"; desk_user "$T"
  touch "$T/$STAMP"
  rm -rf "$R"; mv "$T" "$R" ;;
up)
  rm -rf "$R$S"; mkdir -p "$R$S"
  # our icons installed for the session's user, as install-system puts them in hicolor
  I="$R$S/home/.local/share/icons/hicolor/scalable"; mkdir -p "$I/status" "$I/apps"
  cp "$PROJECT"/resources/icons/hotspotguard-*.svg "$I/status/"
  cp "$PROJECT"/resources/icons/io.github.hotspotguard.svg "$I/apps/"
  R="$R" UXBIND="" setsid "$0" sh /usr/bin/env NO_PLASMA="$NO_PLASMA" /bin/sh /uxsession.sh > "$R.session.log" 2>&1 < /dev/null &
  i=0; while [ ! -s "$R$S/t-names" ] || [ $(wc -l < "$R$S/t-names") -lt 2 ]; do sleep 0.2; i=$((i+1)); [ $i -gt 300 ] && { echo "plasma did not come up"; exit 1; }; done
  cat "$R$S/t-names" ;;
sh)
  shift; inchroot "$@" ;;
applet)
  shift; [ $# -gt 0 ] || set -- python3 -m hotspotguard.ui.launch
  export UXBIND="$PROJECT $UXBIND"
  pre=""; [ -n "$NETNS" ] && pre="ip netns exec $NETNS"
  exec $pre env R="$R" UXBIND="$UXBIND" "$0" sh /bin/sh -c ". $S/env.sh; cd $PROJECT; export PYTHONPATH=src:. ${DBUS_SYSTEM_BUS_ADDRESS:+DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS} ${APPLET_LANG:+LANG=$APPLET_LANG} $APPLET_ENV; exec \"\$@\"" sh "$@" ;;
down)
  for p in /proc/[0-9]*; do [ "$(readlink $p/root 2>/dev/null)" = "$R" ] && { kill ${p#/proc/} 2>/dev/null || true; }; done
  sleep 1
  for p in /proc/[0-9]*; do [ "$(readlink $p/root 2>/dev/null)" = "$R" ] && { kill -9 ${p#/proc/} 2>/dev/null || true; }; done; true ;;
*) echo "usage: $0 ensure|up|applet [CMD...]|sh CMD...|down"; exit 2 ;;
esac
