import { SECOND, MINUTE, HOUR } from '../units.js'
import { PROTOCOL_PREFIX } from '../node/constants.js'

// prekeys's named numbers and names, in one place (durations in ms, sizes in bytes). Every module's
// constants.ts looks like the others in shape (`duplicates` pairs them); none repeats another's values.

export const PREKEY_PROTOCOL_NAME = 'prekeys'
export const PREKEY_PROTOCOL_VERSION = '1.0.0'
/** Fetch a fresh bundle (with a one-time prekey) from the peer itself. */
export const PREKEY_PROTOCOL = `${PROTOCOL_PREFIX}/${PREKEY_PROTOCOL_NAME}/${PREKEY_PROTOCOL_VERSION}`

/**
 * DHT records of published bundles live under `/octet-prekeys/<PeerId>`.
 * kad-dht picks a record's validator and selector by the key's first path
 * segment, so this namespace is also the key of our validator and selector.
 */
export const PREKEY_RECORD_NAMESPACE = 'octet-prekeys'

// ------------------------------------------------------------------ serving

/** Concurrent /octet/prekeys streams one connection may have open to us. */
export const MAX_INBOUND_PREKEY_STREAMS = 4
/** Concurrent /octet/prekeys streams we open on one connection. */
export const MAX_OUTBOUND_PREKEY_STREAMS = 8
/** An inbound stream that has not taken its bundle and closed within this long is reset. */
export const SERVE_TIMEOUT = 10 * SECOND

/**
 * One-time prekeys handed to one remote peer: a token bucket of this many,
 * refilled by one every ONE_TIME_PREKEY_REFILL. Beyond it the peer still gets
 * bundles, without a one-time prekey (signed + last-resort Kyber prekey, as
 * secure), so a peer fetching in a loop cannot drain the pool that other
 * peers' first messages rely on.
 */
export const ONE_TIME_PREKEY_BURST = 5
export const ONE_TIME_PREKEY_REFILL = 30 * MINUTE
/** Peers whose budget is remembered; beyond it the quietest are forgotten. */
export const MAX_TRACKED_PEERS = 10_000

// ------------------------------------------------------------------ fetching

/** Dialling a peer for its bundle, including the DHT lookup of its addresses when it is not connected. */
export const FETCH_DIAL_TIMEOUT = 20 * SECOND
/** Reading the bundle once the stream is open. */
export const FETCH_READ_TIMEOUT = 10 * SECOND
/** A DHT get of a published bundle. */
export const DHT_GET_TIMEOUT = 30 * SECOND
/** Distinct records kept from one DHT get; each is at most MAX_BUNDLE_BYTES. */
export const MAX_DHT_VALUES = 32

// ------------------------------------------------------------------ publishing

/** One DHT put of our bundle; it waits for the first peer when the routing table is empty. */
export const PUBLISH_TIMEOUT = 60 * SECOND
/** After a publish no peer accepted: retry after this, doubling up to the cap. */
export const PUBLISH_RETRY_FIRST = 1 * SECOND
export const PUBLISH_RETRY_MAX = 1 * MINUTE
/**
 * A publish accepted by fewer peers than this (a network of two or three
 * nodes, or one that is still forming) is repeated after
 * SPARSE_REPUBLISH_INTERVAL, so the record reaches the peers that join later.
 */
export const PUBLISH_MIN_REPLICAS = 3
export const SPARSE_REPUBLISH_INTERVAL = 10 * MINUTE
/**
 * Our bundle is re-issued and put again this often. It must stay well under
 * kad-dht's 48 hours after which a storing peer drops a record it received
 * (PROVIDERS_VALIDITY in kad-dht 16) and under BUNDLE_LIFETIME (14 days); it
 * also re-places the record on the peers closest to the key now.
 */
export const REPUBLISH_INTERVAL = 6 * HOUR
/**
 * crypto.maintain() (prekey rotation, clean-up, pool top-up) runs this often;
 * a rotation republishes at once, since the old signed prekey is retired.
 */
export const MAINTENANCE_INTERVAL = 1 * HOUR
