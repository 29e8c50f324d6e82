import { SECOND, KiB } from '../units.js'
import { PROTOCOL_PREFIX } from '../node/constants.js'

// groups's named numbers and names, in one place (durations in ms, sizes in bytes). Every module's
// constants.ts looks like the others in shape (`duplicates` pairs them); none repeats another's values.


export const HISTORY_PROTOCOL_NAME = 'group-history'
export const HISTORY_PROTOCOL_VERSION = '1.0.0'
/** Catch-up: a member asks another for the group messages it missed. */
export const HISTORY_PROTOCOL = `${PROTOCOL_PREFIX}/${HISTORY_PROTOCOL_NAME}/${HISTORY_PROTOCOL_VERSION}`

/** A group's gossipsub topic is `${TOPIC_PREFIX}<sha-256 of the group id, hex>`. */
export const TOPIC_PREFIX = `${PROTOCOL_PREFIX}/group/`

// ------------------------------------------------------------------ membership

/** A group id: 16 random bytes as 32 lowercase hex digits. */
export const GROUP_ID_BYTES = 16
export const MAX_GROUP_NAME_LENGTH = 100
/** Members of one group; keeps a membership document (and a chain of a few) inside one envelope. */
export const MAX_MEMBERS = 100
/** Membership.prevHash: a sha-256. */
export const HASH_BYTES = 32
/** An Ed25519 signature. */
export const SIGNATURE_BYTES = 64
/** An encoded Membership (100 PeerIds of 52 characters and the rest fit well). */
export const MAX_MEMBERSHIP_BYTES = 8 * KiB
/**
 * Membership versions sent along with a change, oldest first, so that a
 * member that missed one (another admin's change) can still follow the chain.
 */
export const MEMBERSHIP_CHAIN_LENGTH = 3
/** Versions of the membership kept per group (for the chains above). */
export const KEPT_VERSIONS = 16
/** What the signature covers starts with this label, so it cannot be mistaken for another signed object. */
export const MEMBERSHIP_SIGNATURE_DOMAIN = 'octet-group-membership-v1'

// ------------------------------------------------------------------ messages

/** GroupPlaintext.text in UTF-8 bytes: the same as a direct message. */
export const MAX_GROUP_TEXT_BYTES = 16 * KiB
/** GroupPlaintext is padded to a multiple of this (ciphertext sizes leak only a coarse length). */
export const GROUP_PAD_BLOCK_BYTES = 160
export const MAX_GROUP_PADDING_BYTES = 4 * KiB
/** An encoded GroupPlaintext. */
export const MAX_GROUP_PLAINTEXT_BYTES = 24 * KiB
/** GroupMessage.ciphertext: a SenderKeyMessage (plaintext + ~100 bytes). */
export const MAX_GROUP_CIPHERTEXT_BYTES = 26 * KiB
/** An encoded GroupMessage: the gossipsub data and one history entry. */
export const MAX_GROUP_MESSAGE_BYTES = 28 * KiB
/** An encoded GroupControl or SenderKey: the plaintext of one pairwise envelope. */
export const MAX_CONTROL_BYTES = 30 * KiB

// ------------------------------------------------------------------ storage

/** Each member keeps the ciphertexts of this many recent messages per group, to serve catch-up. */
export const HISTORY_KEPT_PER_GROUP = 1000
/** Messages that could not be decrypted yet (their sender key is on its way), per group. */
export const MAX_PENDING_PER_GROUP = 1000
/** Out-of-order sequence numbers remembered per sender (beyond the contiguous prefix). */
export const MAX_TRACKED_AHEAD = 1000
/** Messages per page of GET /v1/groups/:id/messages. */
export const DEFAULT_PAGE_SIZE = 50
export const MAX_PAGE_SIZE = 1000

// ------------------------------------------------------------------ catch-up

/** HistoryRequest.known entries (senders). */
export const MAX_KNOWN_SENDERS = MAX_MEMBERS * 2
/** Messages one history answer carries in all, and the default when the request names no limit. */
export const MAX_HISTORY_MESSAGES = 1000
/** A page of the answer: messages are added while the encoded page stays under this. */
export const HISTORY_PAGE_BYTES = 96 * KiB
/** One frame on /octet/group-history/1.0.0 (a page, or the request). */
export const MAX_HISTORY_FRAME_BYTES = 128 * KiB
/** HistoryResponse.reason, in UTF-8 bytes: a longer one is cut. */
export const MAX_HISTORY_REASON_BYTES = 512
/** Bytes one history answer carries in all (what the caller accepts). */
export const MAX_HISTORY_BYTES = MAX_HISTORY_MESSAGES * MAX_GROUP_MESSAGE_BYTES
/** Members asked for history when catching up (they each hold the whole group's recent messages). */
export const CATCH_UP_PEERS = 2
/** A gap in a sender's sequence numbers waits this long (the message may still come) before we ask. */
export const GAP_CATCH_UP_DELAY = 1 * SECOND
/**
 * The event of an early message (one of its sender's earlier ones missing; the message itself is
 * stored at once) waits at most this long for the gap to fill (src/messaging/ordering.ts) when
 * no member answers a catch-up: the first one is asked GAP_CATCH_UP_DELAY after the gap, and
 * given HISTORY_TIMEOUT per page. Measured (test/integration/ordered-events.test.ts): catch-up
 * after a restart filled the gaps before live gossip in 0.1 s.
 */
export const EARLY_HOLD_MAX = 30 * SECOND
/** After start, the first catch-up (the node needs a moment to connect). */
export const START_CATCH_UP_DELAY = 500
/** A catch-up on start that reached nobody is tried again after these delays. */
export const CATCH_UP_RETRY_DELAYS = [2 * SECOND, 5 * SECOND, 15 * SECOND, 60 * SECOND]
export const HISTORY_DIAL_TIMEOUT = 10 * SECOND
/** Waiting for the request (serving) or each page of the answer (calling). */
export const HISTORY_TIMEOUT = 10 * SECOND
export const MAX_INBOUND_HISTORY_STREAMS = 4
/** History requests per remote peer: a steady rate and a burst. */
export const HISTORY_RATE_PER_SECOND = 2
export const HISTORY_BURST = 20
