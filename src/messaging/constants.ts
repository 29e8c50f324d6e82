import { SECOND, MINUTE, HOUR, DAY } from '../units.js'
import { PROTOCOL_PREFIX } from '../node/constants.js'

// messaging's named numbers and names, in one place (durations in ms, sizes in bytes). Every module's
// constants.ts looks like the others in shape (`duplicates` pairs them); none repeats another's values.

export const DM_PROTOCOL = `${PROTOCOL_PREFIX}/dm/1.0.0`

/** Envelopes written on one stream before their acks come back. */
export const SEND_WINDOW = 512
/** An envelope whose ack has not come back by then is retried on a new stream. */
export const ACK_TIMEOUT = 15 * SECOND
/** Dialling a peer (with a DHT lookup when its addresses are unknown). */
export const DIAL_TIMEOUT = 20 * SECOND
/** An inbound stream with no frame for this long is closed; the sender opens a new one. */
export const INBOUND_IDLE_TIMEOUT = 5 * MINUTE
/** Closing a stream waits this long for the peer to close its side too; then the stream is reset. */
export const STREAM_CLOSE_TIMEOUT = 1 * SECOND
/** Parallel DM streams a peer may open to us (one is normal; more are reconnects). */
export const MAX_INBOUND_DM_STREAMS = 4

/** Retry backoff after a failed delivery: doubles from the first to the cap, with jitter. */
export const RETRY_FIRST_DELAY = 1 * SECOND
export const RETRY_MAX_DELAY = 60 * SECOND
/** A recipient whose disk was full is tried again at least this often (see DISK_FULL_REASON). */
export const PEER_DISK_FULL_RETRY_DELAY = 3 * SECOND
/** A message that could not be delivered for this long is marked failed. */
export const MESSAGE_TTL = 7 * DAY

/** Times a message is re-sent on a fresh session after the peer could not decrypt it. */
export const MAX_SESSION_RESETS = 3

/** Inbound envelopes per peer: a steady rate and a burst (token bucket). */
export const INBOUND_RATE_PER_SECOND = 2000
export const INBOUND_BURST = 4000

/** Idempotency keys are remembered this long; a retry after that sends again. */
export const IDEMPOTENCY_TTL = 1 * DAY
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200

/** At most this many missing sequence numbers are tracked per conversation. */
export const MAX_TRACKED_GAPS = 1000
/**
 * The event of a message that arrived ahead of an earlier one of its sender waits at most this
 * long for the gap to fill (src/messaging/ordering.ts); then it goes out naming the gap. What
 * reorders a conversation is a restart: the mailboxes hold a scattered part of what was sent
 * meanwhile (they take a sender's envelopes at a bounded rate), the sender's outbox all of it,
 * and the mailbox collect delivers its part first or in between. The rest comes with the
 * sender's next direct retry: at once when the receiver writes to it (its receipts, say:
 * Sender.peerReachable), else after a long absence up to RETRY_MAX_DELAY (+25 % jitter: 75 s)
 * away. Measured (test/integration/ordered-events.test.ts, 300 messages, B off
 * ~20 s, loopback): the longest wait 5.6 s when the sender's backoff timer brought the rest,
 * 1.2 s when the sender came back online itself. 90 s covers the longest retry pause with
 * room for the pass; a gap still open then is most likely a message that is not coming.
 */
export const EVENT_HOLD_MAX = 90 * SECOND
/** Events held per stream (conversation, group sender): past this, the lowest gap is given up at once. */
export const MAX_HELD_EVENTS_PER_STREAM = 5000
/** Page size limits for conversation history. */
export const DEFAULT_PAGE_SIZE = 50
export const MAX_PAGE_SIZE = 1000
export const MAX_CONTACT_NAME_LENGTH = 100

/** Extra peers asked when collecting: holders may have shifted since the sender stored. */
export const MAILBOX_COLLECT_MARGIN = 2
/** After start, the first look into our mailboxes (the DHT needs a moment to fill). */
export const COLLECT_FIRST_DELAY = 1 * SECOND
/** Then every so often: a sender may have stored while we were online but unreachable. */
export const COLLECT_INTERVAL = 1 * MINUTE
export const COLLECT_TIMEOUT = 30 * SECOND
/**
 * A mailbox we watch says it stored for us: fetch from it after this pause,
 * so that a burst of stores is one fetch, not one each.
 */
export const NOTIFY_DEBOUNCE = 50
/**
 * Fetches notifies may start per mailbox: a steady rate and a burst. Each
 * fetch costs the mailbox's proof limit (src/mailbox/constants.ts
 * PROOF_RATE_PER_SECOND 1, PROOF_BURST 30) two tokens, a FETCH and a DELETE:
 * staying under it leaves room for the periodic collect.
 */
export const NOTIFY_FETCH_RATE_PER_SECOND = 0.4
export const NOTIFY_FETCH_BURST = 10

/**
 * Events are kept this long for replay to event stream clients (Last-Event-ID): a bridge that
 * was away up to a week catches up with nothing missed, the same week a sender retries
 * (MESSAGE_TTL) and a mailbox keeps a sealed copy. Older events are deleted; the state they
 * told of (messages, statuses, contacts) stays in the database.
 */
export const EVENT_RETENTION = 7 * DAY
/** At most this many events are kept, however young: a flood cannot fill the disk with them. */
export const EVENT_RETENTION_COUNT = 100_000
/**
 * Ids of envelopes received (dedup) are remembered this long: twice the time a sender goes on
 * retrying a message (MESSAGE_TTL) and a mailbox holds a copy of it, so a late copy of a message
 * is still recognised. (A copy later than that fails to decrypt anyway: its message key is spent.)
 */
export const SEEN_RETENTION = 2 * MESSAGE_TTL
/** How often old events and dedup entries are pruned (and once at start). */
export const PRUNE_INTERVAL = 1 * HOUR
