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
