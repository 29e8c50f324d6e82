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

/**
 * How often libp2p's connection monitor pings each connection (its default is 10 s). Each ping
 * is a new stream: yamux open, two multistream-select round trips, a peer-store update at both
 * ends, 32 bytes each way. Measured on an idle 20-node testnet, 10 s pings were 30 % of all the
 * daemons' CPU (47 % → 33 % of a core at 60 s), and the count grows with connections: the
 * 50-node testnet could not get ready under them. Yamux already sends a keep-alive frame on
 * every connection each 30 s, which keeps NAT mappings open; the monitor's ping is what finds a
 * dead connection, and a minute is soon enough for that.
 */
export const CONNECTION_PING_INTERVAL = MINUTE

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

/** UDP port of the STUN responder on public nodes, and the port peers ask theirs on (RFC 5389's default). */
export const DEFAULT_STUN_PORT = 3478
/**
 * STUN answers per source IP: ICE sends a few Binding requests per gathering (with
 * retransmissions) and a keep-alive every few seconds; the burst covers several peer
 * connections set up at once, the rate keeps a spoofed flood from making us a reflector.
 */
export const STUN_RATE_PER_SECOND = 5
export const STUN_RATE_BURST = 40
/** Source IPs whose buckets are remembered; beyond, the longest-unseen is forgotten. */
export const STUN_RATE_SOURCES_TRACKED = 4096

/**
 * An explicit upgrade of a relayed connection to WebRTC (signalling over the relay, ICE, DTLS)
 * that has not finished by then is given up. Measured: 0.1–1.2 s when it works.
 */
export const WEBRTC_UPGRADE_TIMEOUT = 10 * SECOND
/**
 * A new WebRTC connection must carry a ping stream within this long or it is aborted:
 * @libp2p/webrtc 6.0.33 emits connections whose ICE never connected (docs/hole-punching.md).
 */
export const WEBRTC_GUARD_TIMEOUT = 3 * SECOND
/** After a failed upgrade to a peer (e.g. a symmetric NAT), the next try waits this long. */
export const WEBRTC_RETRY_AFTER = 10 * 60 * SECOND
/** Peers whose last failed upgrade is remembered (bounded: a peer may connect once and leave). */
export const WEBRTC_FAILURES_TRACKED = 1024
/** The signalling protocol of @libp2p/webrtc (private-to-private): a peer that handles it can be upgraded. */
export const WEBRTC_SIGNALING_PROTOCOL = '/webrtc-signaling/0.0.1'
/**
 * After an upgrade, the relayed connections to the peer are closed this much later, not at once:
 * a dial or stream that was already under way may just have been handed one of them (closed at
 * once, it fails with "Remote closed connection during opening" and the message is postponed).
 */
export const WEBRTC_RELAYED_CLOSE_DELAY = 10 * SECOND
