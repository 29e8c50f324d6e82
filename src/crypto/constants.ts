import { MINUTE, DAY, KiB } from '../units.js'

// crypto's named numbers and names, in one place (durations in ms, sizes in bytes). Every module's
// constants.ts looks like the others in shape (`duplicates` pairs them); none repeats another's values.
/**
 * octet runs one Signal "device" per node: a user is a PeerId, so every
 * ProtocolAddress is (peerId, 1).
 */
export const SIGNAL_DEVICE_ID = 1

/** One-time prekeys kept ready to hand out over /octet/prekeys/1.0.0. */
export const ONE_TIME_PREKEY_POOL_SIZE = 100
/** Below this many unissued one-time prekeys, handing one out tops the pool back up. */
export const ONE_TIME_PREKEY_LOW_WATER = 20
/**
 * A one-time prekey handed out but never used (the fetcher went away) is
 * deleted after this long, so that repeated fetches cannot grow the store
 * without bound. A first message arriving later still decrypts through the
 * signed and Kyber prekeys only if the fetcher fell back to them; otherwise it
 * fails and the sender starts over with a fresh bundle.
 */
export const ONE_TIME_PREKEY_MAX_AGE = 30 * DAY
/**
 * Hard cap on stored one-time prekeys (issued + unissued). Once reached, bundles
 * are served without a one-time prekey, which is still secure (signed prekey +
 * last-resort Kyber prekey), rather than letting a peer that fetches in a loop
 * fill the disk.
 */
export const ONE_TIME_PREKEY_MAX_STORED = 1000

/** The signed prekey and the last-resort Kyber prekey are replaced after this long. */
export const SIGNED_PREKEY_ROTATION = 7 * DAY
/**
 * Replaced prekeys are kept this long, so that first messages built from a
 * bundle fetched before the rotation (possibly delivered late through a
 * mailbox) still decrypt. Must exceed BUNDLE_LIFETIME.
 */
export const RETIRED_PREKEY_GRACE = 30 * DAY

/**
 * How long a bundle is valid after it is issued. A published bundle is
 * re-issued on every rotation, so this only has to outlast one rotation period
 * plus the time a DHT record may go without being refreshed.
 */
export const BUNDLE_LIFETIME = 14 * DAY
/** Clocks of two nodes may disagree by this much before a bundle "from the future" is refused. */
export const MAX_CLOCK_SKEW = 5 * MINUTE

/**
 * Largest encoded SignedPrekeyBundle accepted. A real one is about 2.3 KiB
 * (the Kyber-1024 public key alone is 1569 bytes), so this leaves room for
 * growth while refusing anything absurd before it is decoded.
 */
export const MAX_BUNDLE_BYTES = 16 * KiB

/** libsignal Fingerprint parameters used by Signal itself for safety numbers. */
export const FINGERPRINT_ITERATIONS = 5200
export const FINGERPRINT_VERSION = 2

/** Highest prekey id handed out before ids wrap around (Signal uses 24-bit ids). */
export const MAX_PREKEY_ID = 0xFFFFFF

/**
 * Prefixed to a bundle body before it is signed with the libp2p key, so that a
 * signature made for a bundle can never be passed off as a signature over
 * anything else the same key signs (Noise handshakes, peer records …).
 */
export const BUNDLE_SIGNATURE_DOMAIN = 'octet-prekey-bundle-v1:'
