#!/usr/bin/env bash
# Two homes behind NAT and one public host, in network namespaces (all names start with hp-).
#
#   hp-a 10.77.1.2 ── hp-ra [10.77.1.1 | 203.0.113.21] ─┐
#                                                         ├─ hp-inet (bridge 203.0.113.0/24) ── hp-pub 203.0.113.10
#   hp-b 10.77.2.2 ── hp-rb [10.77.2.1 | 203.0.113.22] ─┘
#
# Routers: MASQUERADE on the WAN side; FORWARD policy DROP, allowing LAN→WAN and ESTABLISHED,RELATED
# (conntrack covers UDP too); INPUT on the WAN side DROP except ESTABLISHED,RELATED. This is a
# port-preserving, endpoint-independent-mapping NAT with address-and-port-dependent filtering,
# like most home routers running Linux.
#
# HP_NAT_A / HP_NAT_B = eim (default) | symmetric: symmetric uses MASQUERADE --random-fully, so
# every new 5-tuple gets a random external port (endpoint-dependent mapping, like carrier-grade
# and some corporate NATs): the port STUN reports is not the port the peer sees.
#
# Usage: scripts/nat/topology.sh up|down|run <command…>
#   run: builds the topology, runs the command in the host namespace (use `ip netns exec hp-x …`
#        inside it), and removes every namespace on exit, also on failure or Ctrl-C.
# Nothing is routed in the host namespace; nothing leaves the namespaces.
set -euo pipefail

NS_ALL=(hp-inet hp-pub hp-ra hp-a hp-rb hp-b)

down () {
  for ns in "${NS_ALL[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

up () {
  command -v iptables >/dev/null || { echo "iptables missing: apt-get install -y iptables" >&2; exit 1; }
  down
  for ns in "${NS_ALL[@]}"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done

  # the "internet": a bridge in hp-inet
  ip -n hp-inet link add br0 type bridge
  ip -n hp-inet link set br0 up

  # public host
  ip link add hp-pub-e netns hp-pub type veth peer name pub netns hp-inet
  ip -n hp-inet link set pub master br0 up
  ip -n hp-pub addr add 203.0.113.10/24 dev hp-pub-e
  ip -n hp-pub link set hp-pub-e up

  home () { # router host wan-ip lan-net nat-kind
    local r=$1 h=$2 wan=$3 net=$4 kind=${5:-eim}
    local masq=(-j MASQUERADE)
    [ "$kind" = symmetric ] && masq=(-j MASQUERADE --random-fully)
    ip link add wan netns "$r" type veth peer name "$r" netns hp-inet
    ip -n hp-inet link set "$r" master br0 up
    ip -n "$r" addr add "$wan/24" dev wan
    ip -n "$r" link set wan up
    ip link add lan netns "$r" type veth peer name eth0 netns "$h"
    ip -n "$r" addr add "$net.1/24" dev lan
    ip -n "$r" link set lan up
    ip -n "$h" addr add "$net.2/24" dev eth0
    ip -n "$h" link set eth0 up
    ip -n "$h" route add default via "$net.1"
    ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$r" iptables -t nat -A POSTROUTING -o wan "${masq[@]}"
    ip netns exec "$r" iptables -P FORWARD DROP
    ip netns exec "$r" iptables -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    ip netns exec "$r" iptables -A FORWARD -i lan -o wan -j ACCEPT
    ip netns exec "$r" iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    ip netns exec "$r" iptables -A INPUT -i wan -j DROP
  }
  home hp-ra hp-a 203.0.113.21 10.77.1 "${HP_NAT_A:-eim}"
  home hp-rb hp-b 203.0.113.22 10.77.2 "${HP_NAT_B:-eim}"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  run)
    shift
    trap down EXIT INT TERM
    up
    "$@"
    ;;
  *) echo "usage: $0 up|down|run <command…>" >&2; exit 2 ;;
esac
