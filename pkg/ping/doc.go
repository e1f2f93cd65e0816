// Package ping tells whether a node computer answers on the network, the
// "node alive" half of fliswarm's node status (the other half, "Docker
// alive", is the engine's /_ping in package engine).
//
// Host sends ICMP echo requests, as the original fliswarm's ping did: on a
// raw socket when the process may open one (root or CAP_NET_RAW), else on
// an unprivileged ICMP datagram socket when net.ipv4.ping_group_range
// admits the process's group. When neither kind of ICMP socket is
// permitted it falls back to a TCP connection to a given port (the Docker
// engine's, usually): an accepted or a refused connection both prove the
// host is up. Only IPv4 is supported; host names are resolved to their
// first IPv4 address.
//
// Each call opens its own socket and matches replies by source address,
// echo identifier and sequence number, so concurrent calls (to the same or
// different hosts) do not see each other's replies.
//
// What it must not do: keep state between calls, retry beyond the one
// timeout it is given, or judge anything but reachability.
package ping
