import { SECOND } from '../units.js'

/** octet's own overlay: a private Kademlia DHT, not the public IPFS one. */
export const PROTOCOL_PREFIX = '/octet'
export const DHT_PROTOCOL = `${PROTOCOL_PREFIX}/kad/1.0.0`

/** Loopback peers are this machine: rate-limiting their inbound connections protects nothing. */
export const LOOPBACK_ALLOW = ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128']

export const DIAL_TIMEOUT = 10 * SECOND
export const DHT_LOOKUP_TIMEOUT = 15 * SECOND
export const MAX_CONNECTIONS = 300

/**
 * /ipfs/ping/1.0.0 streams per connection: kad-dht and the connection monitor each ping, so
 * two outbound (ping's default is one); inbound, the remote's two plus streams still closing.
 */
export const PING_MAX_OUTBOUND_STREAMS = 2
export const PING_MAX_INBOUND_STREAMS = 4

/** Relays a node behind a NAT keeps a reservation on: one may go away at any time. */
export const RELAY_RESERVATIONS_WANTED = 2
/** A reservation attempt (dial + RESERVE) that takes longer is given up and another relay tried. */
export const RELAY_RESERVATION_TIMEOUT = 10 * SECOND
/** hop streams per connection to a relay: reservations and circuit requests are short-lived */
export const RELAY_HOP_MAX_INBOUND_STREAMS = 32
export const RELAY_HOP_MAX_OUTBOUND_STREAMS = 64

/**
 * Spread into every octet protocol's `handle()` and `dialProtocol()`: libp2p 3 keeps protocols
 * off limited (relayed) connections unless they opt in, and peers behind NATs have nothing else
 * until a direct connection replaces the relayed one. The relay's own limits still apply.
 */
export const RELAYED_CONNECTIONS_OK = { runOnLimitedConnection: true } as const

/** How long a DHT query that found no peer at all holds its caller (src/node/routing-guard.ts). */
export const EMPTY_QUERY_PAUSE = 1 * SECOND
