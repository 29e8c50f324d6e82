import { MiB, MINUTE, SECOND } from '../units.js'

// node's named numbers and names, in one place (durations in ms, sizes in bytes). Every module's
// constants.ts looks like the others in shape (`duplicates` pairs them); none repeats another's values.

/** octet's own overlay: a private Kademlia DHT, not the public IPFS one. */
export const PROTOCOL_PREFIX = '/octet'
export const DHT_PROTOCOL = `${PROTOCOL_PREFIX}/kad/1.0.0`

/**
 * libp2p's limits on inbound connections, per source IP per second and in their handshake at
 * once (its own defaults, stated here). They hold for every address, loopback included: there
 * used to be an allow list for 127.0.0.0/8 and ::1, and in libp2p 3.3 an allowed address skips
 * every inbound check, MAX_CONNECTIONS too (measured: 600 loopback connections accepted, +350 MB).
 */
export const INBOUND_CONNECTIONS_PER_SECOND_PER_HOST = 5
export const MAX_PENDING_INBOUND_CONNECTIONS = 10
/**
 * A local testnet (every listen address a loopback one) sees all its peers come from 127.0.0.1:
 * the per-host rate is then the rate of the whole testnet. These are sized for the largest one
 * `octet testnet` starts (100 nodes, src/cli/testnet.ts): each other node may dial a node in the
 * same second (the readiness lookups, a restart of every node), and each handshake may be
 * pending at once. A burst beyond is no failure either: the refused dial is retried by the
 * reconnect loop (reconnect.ts) or the lookup that made it.
 */
export const LOCAL_INBOUND_CONNECTIONS_PER_SECOND = 100
export const LOCAL_MAX_PENDING_INBOUND_CONNECTIONS = 100

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

/**
 * The most a yamux stream lets its peer send ahead of what we read (its receive window grows
 * from 256 KiB up to this while we read fast; yamux's default ceiling is 16 MiB). With a
 * FrameReader pausing at 1 MiB held (src/wire/framing.ts), a stream costs at most about
 * 2 MiB however its peer writes. 1 MiB in flight is 10 MB/s per stream at 100 ms round trip.
 */
export const MAX_STREAM_WINDOW = 1 * MiB

export const DIAL_TIMEOUT = 10 * SECOND
export const DHT_LOOKUP_TIMEOUT = 15 * SECOND
/**
 * Connections at once, inbound and outbound, from any address: loopback peers count like any
 * other. Beyond it inbound connections are refused and libp2p prunes the least useful ones.
 * A 100-node local testnet needs at most 99 per node.
 */
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

/** How long a DHT query that found no peer at all holds its caller (src/node/dht.ts). */
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
/** Source IPs whose buckets are remembered; beyond, full buckets and then the longest-unseen are forgotten. */
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
