/*
 * What the mailbox service counts since start, in one object that its parts
 * (server.ts, handoff.ts, the sweep in index.ts) add to and that
 * MailboxService.counters hands out as a copy: one shape for logs, the API
 * and tests, wherever the count is taken.
 */

/**
 * Why a STORE was refused, as counted (`mailbox.store.refused.<code>` in
 * /v1/stats). On the wire the prefix limits answer RATE_LIMITED and
 * QUOTA_EXCEEDED, and NOT_CLOSEST answers BAD_REQUEST (the STORE went to the
 * wrong mailbox), each with its reason: the statuses of mailbox.proto stay
 * what every version knows.
 */
export type StoreRefusal = 'QUOTA_EXCEEDED' | 'RATE_LIMITED' | 'BAD_REQUEST' | 'NOT_CLOSEST' | 'PREFIX_RATE_LIMITED' | 'PREFIX_QUOTA'

/** Counters since start, for logs, the API and tests. */
export interface MailboxCounters {
  storesAccepted: number
  storesRefused: Record<StoreRefusal, number>
  /** FETCHes answered with OK, and the envelopes they carried */
  fetches: number
  envelopesServed: number
  /** DELETEs answered with OK, and the envelopes they removed */
  deletes: number
  envelopesDeleted: number
  /** FETCHes and DELETEs whose proof did not verify */
  unauthorized: number
  /** requests of any kind refused by the rate limit */
  rateLimited: number
  /** FETCHes and DELETEs answered BAD_REQUEST */
  badRequests: number
  /** streams reset: undecodable or oversized frames, stalls, protocol violations */
  badFrames: number
  expiredRemoved: number
  handedOff: number
  /** WATCHes accepted (renewals included), and refused: another PeerId's mailbox, the limits, bad requests */
  watchesAccepted: number
  watchesRefused: number
  /** notifies written to watchers, and notifies that could not be (the watch ended) */
  notifiesSent: number
  notifyFailures: number
}

export function newCounters (): MailboxCounters {
  return {
    storesAccepted: 0,
    storesRefused: { QUOTA_EXCEEDED: 0, RATE_LIMITED: 0, BAD_REQUEST: 0, NOT_CLOSEST: 0, PREFIX_RATE_LIMITED: 0, PREFIX_QUOTA: 0 },
    fetches: 0,
    envelopesServed: 0,
    deletes: 0,
    envelopesDeleted: 0,
    unauthorized: 0,
    rateLimited: 0,
    badRequests: 0,
    badFrames: 0,
    expiredRemoved: 0,
    handedOff: 0,
    watchesAccepted: 0,
    watchesRefused: 0,
    notifiesSent: 0,
    notifyFailures: 0
  }
}
