import type { Dht } from '../node/index.js'
import { RateLimiter } from '../rate-limit.js'
import { isCloser, kadId } from './distance.js'
import type { Op } from './protocol-serve.js'

/*
 * Who may make requests of this mailbox, and how much it takes from whom:
 * the per-peer rate limits of each kind of request, the per-network-prefix
 * rate and byte share of STOREs (fresh PeerIds are free, fresh networks are
 * not), and the closeness rule (a STORE is for the peers closest to its
 * recipient). The server (server.ts) asks; the answers keep no record of
 * who stored for whom, only in-memory token buckets.
 */

/** Durations in ms, sizes in bytes; MailboxServiceOptions says what each is. */
export interface AdmissionLimits {
  storeRatePerSecond: number
  storeBurst: number
  prefixStoreRatePerSecond: number
  prefixStoreBurst: number
  prefixMaxBytes: number
  /** the prefix byte share refills over one ttl */
  ttl: number
  proofRatePerSecond: number
  proofBurst: number
  watchRatePerSecond: number
  watchBurst: number
  replicas: number
  closestSlack: number
}

export interface AdmissionInit {
  /** this node's PeerId */
  self: string
  /** our routing table, for the closeness rule */
  dht: Dht
  limits: AdmissionLimits
}

/** Which limit refused a request (see admit()). */
export type RateRefusal = 'RATE_LIMITED' | 'PREFIX_RATE_LIMITED'

export class MailboxAdmission {
  private readonly storeLimiter: RateLimiter
  private readonly prefixStoreLimiter: RateLimiter
  /** bytes per prefix, refilled over a ttl (see PREFIX_MAX_BYTES) */
  private readonly prefixBytes: RateLimiter
  private readonly proofLimiter: RateLimiter
  private readonly watchLimiter: RateLimiter

  constructor (private readonly init: AdmissionInit) {
    const { limits } = init
    // the rate limits run on wall-clock time: the injected clock moves stored envelopes' ages only
    this.storeLimiter = new RateLimiter(limits.storeRatePerSecond, limits.storeBurst)
    this.prefixStoreLimiter = new RateLimiter(limits.prefixStoreRatePerSecond, limits.prefixStoreBurst)
    this.prefixBytes = new RateLimiter(limits.prefixMaxBytes * 1000 / limits.ttl, limits.prefixMaxBytes)
    this.proofLimiter = new RateLimiter(limits.proofRatePerSecond, limits.proofBurst)
    this.watchLimiter = new RateLimiter(limits.watchRatePerSecond, limits.watchBurst)
  }

  /**
   * Takes a token for a request of kind `op` from `peer` and, for a STORE,
   * from the network prefix it comes from: undefined when admitted,
   * otherwise which limit refused it.
   */
  admit (op: Op, peer: string, prefix: string): RateRefusal | undefined {
    const limiter = op === 'STORE' ? this.storeLimiter : op === 'WATCH' ? this.watchLimiter : this.proofLimiter
    if (!limiter.tryTake(peer)) return 'RATE_LIMITED'
    // fresh PeerIds get fresh buckets above; the prefix they come from does not
    if (op === 'STORE' && !this.prefixStoreLimiter.tryTake(prefix)) return 'PREFIX_RATE_LIMITED'
    return undefined
  }

  /**
   * Charges `cost` bytes to the prefix's share: undefined when it had them,
   * otherwise the reason of the refusal (QUOTA_EXCEEDED on the wire).
   */
  chargePrefix (prefix: string, cost: number): string | undefined {
    if (this.prefixBytes.tryTake(prefix, cost)) return undefined
    return `your network (${prefix}) stored its share of this mailbox for now (${this.init.limits.prefixMaxBytes} bytes per ${Math.round(this.init.limits.ttl / 1000)} s)`
  }

  /** Gives back a charge for bytes that are not held after all: only what is held now counts. */
  refundPrefix (prefix: string, cost: number): void {
    this.prefixBytes.refund(prefix, cost)
  }

  /**
   * undefined when this node may hold envelopes for `recipient`: it ranks
   * among the `replicas + closestSlack` peers closest to the recipient's key
   * in its own routing table (or the table holds fewer). Otherwise that
   * number, for the refusal. The recipient and the storing peer are left out
   * of the ranking, as a sender's lookup leaves them out: neither is a
   * mailbox for this recipient. The slack (CLOSEST_SLACK's reasoning, see
   * the option) keeps honest stores from being refused over differences
   * between the sender's walk and our table.
   */
  closestRank (recipient: string, storer: string): number | undefined {
    const wanted = this.init.limits.replicas + this.init.limits.closestSlack
    const closest = this.init.dht.closestInTable(kadId(recipient), wanted, [recipient, storer])
    if (closest == null) return undefined
    const closer = closest.filter(peer => isCloser(recipient, peer, this.init.self))
    return closer.length >= wanted ? wanted : undefined
  }
}
