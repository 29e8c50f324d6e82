import { MINUTE, SECOND } from '../units.js'

/** octet's own overlay: a private Kademlia DHT, not the public IPFS one. */
export const PROTOCOL_PREFIX = '/octet'
export const DHT_PROTOCOL = `${PROTOCOL_PREFIX}/kad/1.0.0`

/**
 * Loopback peers are this machine: rate-limiting their inbound connections protects nothing.
 * In libp2p 3.3.11 (ConnectionManager.acceptIncomingConnection) an allowed address skips every
 * inbound limit: maxIncomingPendingConnections (10), inboundConnectionThreshold (5/s per host)
 * and maxConnections. Measured: 29 daemons started at once against one bootstrap node on
 * 127.0.0.1 all got their connection (it had 29 peers), so a testnet's burst needs no other
 * tuning. From other hosts those limits still apply, and a dial refused in a burst is retried
 * by the reconnect loop (reconnect.ts) instead of being lost for good.
 */
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

/**
 * Connections a node wants. Below this it keeps re-dialling its bootstrap peers and the peers
 * it knew (the reconnect loop, src/node/reconnect.ts). Three: one peer is a single point of
 * failure, and a handful of connections is what the DHT's first lookups start from; more come
 * by themselves from lookups and from peers dialling us.
 */
export const MIN_PEERS = 3
/** First pause of the reconnect loop after an attempt that brought no connection; doubled after each, up to the max. */
export const RECONNECT_BASE_DELAY = SECOND
/**
 * The longest pause between reconnect attempts. A node that lost its network comes back at
 * most this long after its peers do; a dial to each known peer this often costs nothing.
 */
export const RECONNECT_MAX_DELAY = 30 * SECOND
/** While a node has the peers it wants: how often the loop checks anyway (disconnects wake it sooner). */
export const RECONNECT_CHECK_INTERVAL = MINUTE
/** Peers from the peer store dialled per attempt (besides the bootstrap peers), picked at random. */
export const RECONNECT_KNOWN_PEERS_PER_ATTEMPT = 8
/** After a new connection, how long the self-lookup waits for the peer to enter the DHT routing table (identify runs first). */
export const ROUTING_TABLE_ENTRY_WAIT = 5 * SECOND
