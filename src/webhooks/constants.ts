import { MINUTE, SECOND } from '../units.js'

// webhooks' named numbers, in one place (durations in ms, sizes in bytes). The delivery knobs
// are defaults of WebhookOptions: the daemon's config (webhookTimeoutMs, webhookRetryMinMs,
// webhookRetryMaxMs, webhookPauseAfter) may change them.

/** One POST may take this long (connect, send, answer headers); then it is aborted and counts as a failure. */
export const DELIVERY_TIMEOUT = 10 * SECOND
/** The first retry after a failure waits about this long; each further failure doubles the wait … */
export const RETRY_MIN_DELAY = 1 * SECOND
/** … up to this cap. Each wait is jittered (between half and all of it) so webhooks failing together spread out. */
export const RETRY_MAX_DELAY = 5 * MINUTE
/**
 * After this many failed attempts in a row a webhook is paused: it stops trying until
 * POST /v1/webhooks/:id/resume. With the waits above (1 s, 2 s … 256 s, then 5 min, each
 * jittered to half–all of it) that is 20 to 40 minutes of failing: a receiver down for a
 * deploy or a reboot catches up by itself, one gone for good stops costing work.
 */
export const PAUSE_AFTER_FAILURES = 16
/** A stopping daemon lets a POST in flight finish for this long, then aborts it (it is sent again after the restart). */
export const STOP_GRACE = 2 * SECOND

/** Webhooks one daemon keeps: each holds a cursor and one POST in flight. */
export const MAX_WEBHOOKS = 100
/** http(s) URLs up to this long. */
export const MAX_URL_LENGTH = 2048
/** A secret given by the caller: at least 16 characters (guessable ones make forgeable signatures), at most 256. */
export const MIN_SECRET_LENGTH = 16
export const MAX_SECRET_LENGTH = 256
/** Random bytes of a generated secret (base64url: 43 characters). */
export const GENERATED_SECRET_BYTES = 32
/** Stored events read per step while a webhook catches up. */
export const READ_PAGE = 256

/** A receiver should refuse a delivery whose timestamp is further than this from its clock (replays). */
export const SIGNATURE_TOLERANCE = 5 * MINUTE
/** Headers of every delivery (Node lower-cases them on the receiving side). */
export const HEADER_EVENT_ID = 'x-octet-event-id'
export const HEADER_TIMESTAMP = 'x-octet-timestamp'
export const HEADER_SIGNATURE = 'x-octet-signature'
export const HEADER_WEBHOOK_ID = 'x-octet-webhook-id'
