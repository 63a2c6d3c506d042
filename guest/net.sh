#!/bin/sh
# The test guest's network (started by /init before memcheck; returns at
# once, its watcher and servers run in the background).
#
# Kernel command line:
#   tern.ip=10.x.y.z/24   the address of eth0 (the first NIC)
#   tern.gw=10.x.y.1      a default route (optional)
#   tern.net=1            watch NICs without configuring an address
# With neither tern.ip nor tern.net nothing runs.
#
# Console lines (see guest/README.md):
#   TERN-NET <dev> <addr|-> mac=<mac> mtu=<mtu>   a NIC is up (at boot or
#                                                  hot-plugged)
#   TERN-NET-GONE <dev> mac=<mac>                  a NIC was unplugged
# Servers on eth0's address: a TCP echo on port 7 (busybox nc, one cat
# per connection) and busybox httpd on port 80 serving /www/index.html
# ("tern-guest <mac>").

ip= gw= watch=
for word in $(cat /proc/cmdline); do
	case "$word" in
	tern.ip=*) ip="${word#tern.ip=}" ;;
	tern.gw=*) gw="${word#tern.gw=}" ;;
	tern.net=1) watch=1 ;;
	esac
done
[ -n "$ip$watch" ] || exit 0

ip link set lo up

# Brings DEV up (eth0 with the address) and prints its line.
net_up() {
	dev=$1 addr=-
	ip link set "$dev" up
	if [ "$dev" = eth0 ] && [ -n "$ip" ]; then
		ip addr add "$ip" dev eth0 && addr=$ip
		[ -n "$gw" ] && ip route add default via "$gw"
	fi
	echo "TERN-NET $dev $addr mac=$(cat /sys/class/net/$dev/address) mtu=$(cat /sys/class/net/$dev/mtu)"
}

# Every 200 ms: NICs that appeared are brought up, NICs that went are
# reported.  KNOWN holds "dev=mac" words.
net_watch() {
	known=
	while :; do
		now=
		for d in /sys/class/net/eth*; do
			[ -e "$d" ] || continue
			dev=${d##*/}
			now="$now $dev=$(cat "$d/address")"
		done
		for w in $now; do
			case " $known " in *" $w "*) ;; *) net_up "${w%%=*}" ;; esac
		done
		for w in $known; do
			case " $now " in *" $w "*) ;; *) echo "TERN-NET-GONE ${w%%=*} mac=${w#*=}" ;; esac
		done
		known=$now
		sleep 0.2
	done
}

net_watch </dev/null &

if [ -n "$ip" ]; then
	mkdir -p /www
	nc -ll -p 7 -e /bin/cat </dev/null >/dev/null 2>&1 &
	# index.html names eth0's MAC once it is there.
	(
		while [ ! -e /sys/class/net/eth0/address ]; do sleep 0.2; done
		echo "tern-guest $(cat /sys/class/net/eth0/address)" >/www/index.html
		httpd -p 80 -h /www
	) </dev/null >/dev/null 2>&1 &
fi
exit 0
