import { SECOND, MINUTE, DAY, KiB, MiB } from '../units.js'
import { PROTOCOL_PREFIX } from '../node/constants.js'

// mailbox's named numbers and names, in one place (durations in ms, sizes in bytes). Every module's
// constants.ts looks like the others in shape (`duplicates` pairs them); none repeats another's values.

export const MAILBOX_PROTOCOL_NAME = 'mailbox'
export const MAILBOX_PROTOCOL_VERSION = '1.0.0'
/** Store, fetch and delete sealed envelopes held for an offline peer. */
export const MAILBOX_PROTOCOL = `${PROTOCOL_PREFIX}/${MAILBOX_PROTOCOL_NAME}/${MAILBOX_PROTOCOL_VERSION}`

// ------------------------------------------------------------------ wire

/**
 * One frame on /octet/mailbox/1.0.0, without its length prefix. Larger than
 * the DM frame (MAX_FRAME_BYTES, 64 KiB) because a STORE request carries a
 * whole sealed envelope, and a FETCH page carries at least one.
 */
export const MAX_MAILBOX_FRAME_BYTES = 128 * KiB
/** A FETCH page: envelopes are added while the encoded page stays under this (one always fits). */
export const FETCH_PAGE_BYTES = MAX_MAILBOX_FRAME_BYTES - 1 * KiB
/** Upper bound of the protobuf overhead of one StoredEnvelope in a page, beyond its sealed bytes. */
export const STORED_ENVELOPE_OVERHEAD_BYTES = 64
/** FETCH without a `limit` gets pages of this many envelopes; a larger `limit` is cut to the maximum. */
export const DEFAULT_FETCH_LIMIT = 100
export const MAX_FETCH_LIMIT = 1000
/** Ids in one DELETE request; the client splits longer lists. 1000 × 34 bytes fits in a frame. */
export const MAX_DELETE_IDS = 1000
/** An envelope id is the sha-256 of its sealed bytes. */
export const ENVELOPE_ID_BYTES = 32
/** A FETCH/DELETE challenge. */
export const NONCE_BYTES = 32
/** A MailboxProof frame (an Ed25519 signature is 64 bytes). */
export const MAX_PROOF_FRAME_BYTES = 256
/** MailboxResponse.reason, in UTF-8 bytes. */
export const MAX_REASON_BYTES = 512
/**
 * What one fetch() takes from one mailbox across all its pages, so that a
 * mailbox that keeps answering `more` cannot exhaust our memory.
 */
export const CLIENT_MAX_FETCHED_ENVELOPES = 10_000
export const CLIENT_MAX_FETCHED_BYTES = 64 * MiB

// ------------------------------------------------------------------ storage

/** An envelope is kept this long after it was stored, then swept. */
export const DEFAULT_TTL = 7 * DAY
/** Per recipient: envelopes held at once. */
export const MAX_ENVELOPES_PER_RECIPIENT = 1000
/** Per recipient: bytes held at once (see ENTRY_OVERHEAD_BYTES). */
export const MAX_BYTES_PER_RECIPIENT = 16 * MiB
/** All recipients together: the disk budget of this node's mailbox. */
export const MAX_TOTAL_BYTES = 256 * MiB
/**
 * Each envelope is charged its sealed size plus this much against the byte
 * quotas, for its index entries: a flood of tiny envelopes costs disk too.
 */
export const ENTRY_OVERHEAD_BYTES = 256
/** Expired envelopes are removed this often (they are never served once expired). */
export const SWEEP_INTERVAL = 10 * MINUTE
/** Database operations per batch when sweeping. */
export const SWEEP_BATCH = 500

// ------------------------------------------------------------------ serving

/** Concurrent /octet/mailbox streams one connection may have open to us. */
export const MAX_INBOUND_MAILBOX_STREAMS = 8
/** Concurrent /octet/mailbox streams we open on one connection. */
export const MAX_OUTBOUND_MAILBOX_STREAMS = 16
/** Waiting for the caller's request, or its proof: re-armed for each frame. */
export const REQUEST_TIMEOUT = 10 * SECOND
/** Writing one answer frame (the caller must read it) and closing. */
export const WRITE_TIMEOUT = 10 * SECOND
/** STOREs from one remote peer: a steady rate and a burst (token bucket). */
export const STORE_RATE_PER_SECOND = 2
export const STORE_BURST = 60
/**
 * STOREs from one network prefix (an IPv4 /24, an IPv6 /48, a relay's
 * prefix for relayed connections: src/node/addresses.ts networkPrefix), all
 * its PeerIds together: a PeerId costs nothing to make, addresses do. Four
 * peers' worth, so that a household or a local testnet (one prefix: every
 * node is 127.0.0.1) stores as freely as before.
 */
export const PREFIX_STORE_RATE_PER_SECOND = 4 * STORE_RATE_PER_SECOND
export const PREFIX_STORE_BURST = 4 * STORE_BURST
/**
 * Bytes (charged as the quotas charge them) one prefix may have stored here
 * per DEFAULT_TTL: a budget that refills over an envelope's lifetime, so
 * that what one prefix holds at any time stays under twice this, and no
 * fewer than 4 prefixes can fill MAX_TOTAL_BYTES, without writing down who
 * stored what. 32 MiB is ~20,000 1 KiB messages a week for the recipients
 * this node keeps mail for.
 */
export const PREFIX_MAX_BYTES = 32 * MiB
/** FETCHes and DELETEs from one remote peer (each costs a signature check and a scan). */
export const PROOF_RATE_PER_SECOND = 1
export const PROOF_BURST = 30
/** WATCHes from one remote peer: a watcher renews every WATCH_RENEW_INTERVAL and after reconnects. */
export const WATCH_RATE_PER_SECOND = 0.2
export const WATCH_BURST = 10

// ------------------------------------------------------------------ watching

/**
 * A watch (a held-open WATCH stream on which the mailbox writes a
 * MailboxNotify whenever it stores for the watcher) lasts at most this long;
 * then the mailbox ends it, and a watcher still online registers again.
 * Bounds what a peer that went away without closing costs us.
 */
export const WATCH_TTL = 5 * MINUTE
/** Watches one peer may hold at one mailbox: a renewal or a second connection overlaps the old one; the oldest is ended beyond this. */
export const MAX_WATCHES_PER_PEER = 2
/** Watches one mailbox holds for all peers together (each is an open stream); further WATCHes are refused with QUOTA_EXCEEDED. */
export const MAX_WATCHES = 1024
/** A MailboxNotify frame: one small varint. Anything larger from a mailbox is refused. */
export const MAX_NOTIFY_FRAME_BYTES = 16
/** The watcher renews each watch this often, before the mailbox's WATCH_TTL ends it. */
export const WATCH_RENEW_INTERVAL = 4 * MINUTE
/** A watch that failed or was refused is tried again after this, doubling up to the cap (sooner when the peer reconnects). */
export const WATCH_RETRY_FIRST_DELAY = 1 * SECOND
export const WATCH_RETRY_MAX_DELAY = 1 * MINUTE
/** A watch the mailbox ended sooner than this after it began counts as a failure (backoff), not as an expiry to renew at once. */
export const WATCH_MIN_LIFETIME = 1 * SECOND

// ------------------------------------------------------------------ calling

/** Dialling a mailbox peer, including the DHT lookup of its addresses when it is not connected. */
export const DIAL_TIMEOUT = 20 * SECOND
/** Waiting for each frame of the mailbox's answer. */
export const RESPONSE_TIMEOUT = 10 * SECOND
/** A walk of the DHT towards a recipient's key. */
export const CLOSEST_PEERS_TIMEOUT = 30 * SECOND
/** Dialling a peer the DHT named as close to a recipient but did not hear from in the walk. */
export const PROBE_TIMEOUT = 5 * SECOND
/** Peers that hold a recipient's envelopes: the k closest to its key (DESIGN: k = 3). */
export const MAILBOX_REPLICAS = 3

// ------------------------------------------------------------------ handoff

/**
 * Every so often a holder checks, per recipient, whether it is still among
 * the MAILBOX_REPLICAS peers closest to the recipient's key; if not, it
 * stores what it holds at those peers and drops its copy.
 */
export const HANDOFF_INTERVAL = 10 * MINUTE
/** One handoff round, all recipients. */
export const HANDOFF_TIMEOUT = 5 * MINUTE
