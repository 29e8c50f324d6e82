import type { Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { ServiceRun } from '../service-run.js'
import type { Logger } from '../logger.js'
import { RateLimiter } from '../rate-limit.js'
import { networkPrefix } from '../node/addresses.js'
import { RELAYED_CONNECTIONS_OK, dialProtocolFindingPeer, parsePeerId, type Dht, type OctetLibp2p } from '../node/index.js'
import { Refusals } from '../refusals.js'
import type { Store } from '../store/database.js'
import { MAX_SEALED_BYTES } from '../wire/limits.js'
import { MailboxOp, MailboxStatus, type MailboxResponse } from '../wire/mailbox.pb.js'
import {
  CLIENT_MAX_FETCHED_BYTES,
  CLIENT_MAX_FETCHED_ENVELOPES,
  CLOSEST_PEERS_TIMEOUT,
  DEFAULT_TTL,
  DIAL_TIMEOUT,
  HANDOFF_INTERVAL,
  HANDOFF_TIMEOUT,
  MAILBOX_PROTOCOL,
  MAILBOX_REPLICAS,
  MAX_BYTES_PER_RECIPIENT,
  MAX_DELETE_IDS,
  MAX_ENVELOPES_PER_RECIPIENT,
  MAX_FETCH_LIMIT,
  MAX_INBOUND_MAILBOX_STREAMS,
  MAX_OUTBOUND_MAILBOX_STREAMS,
  MAX_TOTAL_BYTES,
  PREFIX_MAX_BYTES,
  PREFIX_STORE_BURST,
  PREFIX_STORE_RATE_PER_SECOND,
  PROBE_TIMEOUT,
  PROOF_BURST,
  PROOF_RATE_PER_SECOND,
  REQUEST_TIMEOUT,
  RESPONSE_TIMEOUT,
  STORE_BURST,
  STORE_RATE_PER_SECOND,
  SWEEP_INTERVAL,
  MAX_WATCHES,
  MAX_WATCHES_PER_PEER,
  WATCH_BURST,
  WATCH_MIN_LIFETIME,
  WATCH_RATE_PER_SECOND,
  WATCH_RENEW_INTERVAL,
  WATCH_RETRY_FIRST_DELAY,
  WATCH_RETRY_MAX_DELAY,
  WATCH_TTL
} from './constants.js'
import { isCloser, kadId, sortByDistance } from './distance.js'
import { signProof } from './proof.js'
import { callDelete, callFetch, callStore, type FetchedEnvelope } from './protocol-call.js'
import { serveMailbox, type MailboxBackend, type ServeOutcome } from './protocol-serve.js'
import { MailboxStore, chargedBytes, type MailboxUsage } from './store.js'
import { WatchClient, type NotifyListener, type WatchClientCounters } from './watch-client.js'
import { WatcherRegistry } from './watchers.js'

export { MAILBOX_PROTOCOL } from './constants.js'
export type { FetchedEnvelope } from './protocol-call.js'
export type { MailboxUsage } from './store.js'
export type { NotifyListener, WatchClientCounters } from './watch-client.js'

/** Every default is in constants.ts; tests shrink them. Durations in ms, sizes in bytes. */
export interface MailboxServiceOptions {
  /** how long a held envelope is kept (DEFAULT_TTL, 7 days) */
  ttl?: number
  maxEnvelopesPerRecipient?: number
  maxBytesPerRecipient?: number
  /** the disk budget for all recipients together */
  maxTotalBytes?: number
  /** STOREs per remote peer: tokens a second and burst */
  storeRatePerSecond?: number
  storeBurst?: number
  /** STOREs per network prefix (all its PeerIds together), and bytes a prefix may store per ttl */
  prefixStoreRatePerSecond?: number
  prefixStoreBurst?: number
  prefixMaxBytes?: number
  /**
   * A STORE is taken only when this node ranks among the `replicas +
   * closestSlack` peers closest to the recipient in its routing table
   * (default: replicas, see closestRank)
   */
  closestSlack?: number
  /** FETCHes and DELETEs per remote peer */
  proofRatePerSecond?: number
  proofBurst?: number
  /** k: how many peers closest to a recipient hold its envelopes (used by handoff) */
  replicas?: number
  sweepInterval?: number
  handoffInterval?: number
  /** serving: wait for a request or a proof */
  requestTimeout?: number
  /** calling: wait for each frame of an answer */
  responseTimeout?: number
  dialTimeout?: number
  closestPeersTimeout?: number
  /** serving WATCH: watches per peer, in all, and how long one lasts */
  maxWatchesPerPeer?: number
  maxWatches?: number
  watchTtl?: number
  /** WATCHes per remote peer */
  watchRatePerSecond?: number
  watchBurst?: number
  /** watching: renew each watch this often; retry a failed one after a backoff from first to max */
  watchRenewInterval?: number
  watchRetryFirstDelay?: number
  watchRetryMaxDelay?: number
  /** the clock of stored envelopes and expiry */
  now?: () => number
}

export interface MailboxServiceComponents {
  libp2p: OctetLibp2p
  /** who holds a recipient's mailbox: our routing table and DHT walks (OctetNode.dht) */
  dht: Dht
  store: Store
  /** this node's libp2p key: signs the proofs of our own FETCHes and DELETEs */
  privateKey: PrivateKey
  log: Logger
  /** where refusals are counted (/v1/stats) and logged; by default counted in `counters` and logged here only */
  refusals?: Refusals
  options?: MailboxServiceOptions
}

export type MailboxStatusName = 'OK' | 'QUOTA_EXCEEDED' | 'RATE_LIMITED' | 'UNAUTHORIZED' | 'BAD_REQUEST'

/** A mailbox's answer to a STORE. Refusals are answers, not errors. */
export interface StoreResult {
  accepted: boolean
  status: MailboxStatusName
  /** why not, for a person (empty when accepted) */
  reason: string
  /** envelopes the mailbox now holds for the recipient (when accepted) */
  count: number
  /** accepted, and it held these bytes already (absent otherwise, and from mailboxes that do not say) */
  duplicate?: true
}

export interface HandoffReport {
  /** recipients whose envelopes we hold and checked */
  recipients: number
  /** envelopes stored at closer peers and dropped here */
  moved: number
}

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

/**
 * Offline store-and-forward on /octet/mailbox/1.0.0. Serves every peer: keeps
 * sealed envelopes for recipients (quotas, TTL, per-peer rate limit), hands
 * them out to the recipient alone (a signature over a fresh challenge), and
 * moves them on when it is no longer among the peers closest to a recipient.
 * As a client, it stores at, fetches from and deletes at other mailboxes.
 *
 * The storing peer is never written down: the remote PeerId is used for the
 * in-memory rate limit only, and logged only at debug level, apart from any
 * recipient or envelope.
 */
export class MailboxService {
  private readonly tally: MailboxCounters = {
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

  private readonly options: Required<Omit<MailboxServiceOptions, 'now'>> & { now: () => number }
  private readonly storeLimiter: RateLimiter
  private readonly prefixStoreLimiter: RateLimiter
  /** bytes per prefix, refilled over a ttl (see PREFIX_MAX_BYTES) */
  private readonly prefixBytes: RateLimiter
  private readonly refusals: Refusals
  private readonly proofLimiter: RateLimiter
  private readonly watchLimiter: RateLimiter
  /** serving: who watches for what we store */
  private readonly watchers: WatcherRegistry
  /** calling: our own watches at the mailbox peers closest to us */
  private readonly watches: WatchClient
  private readonly inbound = new Map<Stream, Promise<void>>()
  private readonly background = new Set<Promise<unknown>>()
  private mailbox: MailboxStore | undefined
  private readonly run = new ServiceRun('the mailbox service')
  private timers: NodeJS.Timeout[] = []
  private handoffRun: Promise<HandoffReport> | undefined
  private readonly self: string
  private readonly log: Logger

  constructor (private readonly components: MailboxServiceComponents) {
    this.log = components.log.child({ module: 'mailbox' })
    this.self = components.libp2p.peerId.toString()
    const given = Object.fromEntries(Object.entries(components.options ?? {}).filter(([, v]) => v !== undefined)) as MailboxServiceOptions
    this.options = {
      ttl: DEFAULT_TTL,
      maxEnvelopesPerRecipient: MAX_ENVELOPES_PER_RECIPIENT,
      maxBytesPerRecipient: MAX_BYTES_PER_RECIPIENT,
      maxTotalBytes: MAX_TOTAL_BYTES,
      storeRatePerSecond: STORE_RATE_PER_SECOND,
      storeBurst: STORE_BURST,
      prefixStoreRatePerSecond: PREFIX_STORE_RATE_PER_SECOND,
      prefixStoreBurst: PREFIX_STORE_BURST,
      prefixMaxBytes: PREFIX_MAX_BYTES,
      closestSlack: given.replicas ?? MAILBOX_REPLICAS,
      proofRatePerSecond: PROOF_RATE_PER_SECOND,
      proofBurst: PROOF_BURST,
      replicas: MAILBOX_REPLICAS,
      sweepInterval: SWEEP_INTERVAL,
      handoffInterval: HANDOFF_INTERVAL,
      requestTimeout: REQUEST_TIMEOUT,
      responseTimeout: RESPONSE_TIMEOUT,
      dialTimeout: DIAL_TIMEOUT,
      closestPeersTimeout: CLOSEST_PEERS_TIMEOUT,
      maxWatchesPerPeer: MAX_WATCHES_PER_PEER,
      maxWatches: MAX_WATCHES,
      watchTtl: WATCH_TTL,
      watchRatePerSecond: WATCH_RATE_PER_SECOND,
      watchBurst: WATCH_BURST,
      watchRenewInterval: WATCH_RENEW_INTERVAL,
      watchRetryFirstDelay: WATCH_RETRY_FIRST_DELAY,
      watchRetryMaxDelay: WATCH_RETRY_MAX_DELAY,
      now: Date.now,
      ...given
    }
    // the rate limits run on wall-clock time: the injected clock moves stored envelopes' ages only
    this.storeLimiter = new RateLimiter(this.options.storeRatePerSecond, this.options.storeBurst)
    this.prefixStoreLimiter = new RateLimiter(this.options.prefixStoreRatePerSecond, this.options.prefixStoreBurst)
    this.prefixBytes = new RateLimiter(this.options.prefixMaxBytes * 1000 / this.options.ttl, this.options.prefixMaxBytes)
    this.refusals = components.refusals ?? new Refusals({ increment: () => {} }, this.log)
    this.proofLimiter = new RateLimiter(this.options.proofRatePerSecond, this.options.proofBurst)
    this.watchLimiter = new RateLimiter(this.options.watchRatePerSecond, this.options.watchBurst)
    this.watchers = new WatcherRegistry({ perPeer: this.options.maxWatchesPerPeer, total: this.options.maxWatches, ttl: this.options.watchTtl })
    this.watches = new WatchClient({
      self: this.self,
      openStream: async (peer, signal) => await this.openStream(peer, signal),
      log: this.log,
      responseTimeout: this.options.responseTimeout,
      renewInterval: this.options.watchRenewInterval,
      retryFirstDelay: this.options.watchRetryFirstDelay,
      retryMaxDelay: this.options.watchRetryMaxDelay,
      minLifetime: WATCH_MIN_LIFETIME
    })
  }

  /** Counters since start (a copy). */
  get counters (): Readonly<MailboxCounters> {
    return { ...this.tally, storesRefused: { ...this.tally.storesRefused } }
  }

  /** Watches other peers hold at this mailbox now. */
  watcherCount (): number {
    return this.watchers.size
  }

  /** Our own watches: what they did since start (a copy). */
  get watchCounters (): Readonly<WatchClientCounters> {
    return { ...this.watches.counters }
  }

  /** Mailbox peers at which our watch is registered now. */
  watching (): string[] {
    return this.watches.active()
  }

  /** What we hold for others: envelopes, bytes charged (sealed sizes plus per-entry overhead), recipients. */
  stats (): MailboxUsage {
    return this.mailbox?.stats() ?? { envelopes: 0, bytes: 0, recipients: 0 }
  }

  isStarted (): boolean {
    return this.run.running
  }

  /**
   * Opens the mailbox sublevels (rebuilding the counters), serves the
   * protocol, sweeps expired envelopes now and every sweepInterval, and hands
   * envelopes on every handoffInterval. Idempotent.
   */
  async start (): Promise<void> {
    await this.run.serially(async () => {
      if (this.run.running) return
      const { store, libp2p } = this.components
      const { ttl, maxEnvelopesPerRecipient, maxBytesPerRecipient, maxTotalBytes, now } = this.options
      this.mailbox ??= await MailboxStore.open(store, { ttl, maxEnvelopesPerRecipient, maxBytesPerRecipient, maxTotalBytes, now })
      await libp2p.handle(MAILBOX_PROTOCOL, this.onStream, {
        maxInboundStreams: MAX_INBOUND_MAILBOX_STREAMS,
        maxOutboundStreams: MAX_OUTBOUND_MAILBOX_STREAMS,
        ...RELAYED_CONNECTIONS_OK
      })
      libp2p.addEventListener('peer:connect', this.onConnect)
      this.run.begin()
      this.track(this.sweep())
      this.timers = [
        setInterval(() => { this.track(this.sweep()) }, this.options.sweepInterval),
        setInterval(() => {
          this.track(this.handoff().catch((err: unknown) => {
            if (this.run.running) this.log.warn({ err: errorMessage(err) }, 'mailbox handoff failed; trying again later')
          }))
        }, this.options.handoffInterval)
      ]
      for (const timer of this.timers) timer.unref()
    })
  }

  /** Stops serving and the schedule, resets inbound streams, aborts in-flight calls. Idempotent. */
  async stop (): Promise<void> {
    await this.run.serially(async () => {
      if (!this.run.running) return
      const stopped = this.run.end()
      for (const timer of this.timers) clearInterval(timer)
      this.timers = []
      this.components.libp2p.removeEventListener('peer:connect', this.onConnect)
      try {
        await this.components.libp2p.unhandle(MAILBOX_PROTOCOL)
      } catch (err) {
        this.log.debug({ err }, 'could not unregister the mailbox protocol')
      }
      this.watchers.endAll(stopped)
      for (const stream of this.inbound.keys()) stream.abort(stopped)
      await Promise.allSettled([...this.inbound.values(), ...this.background, this.watches.stop()])
    })
  }

  /** Work that stop() waits for; its failures are the caller's to report. */
  private track (task: Promise<unknown>): void {
    const tracked = task.catch(() => {}).finally(() => { this.background.delete(tracked) })
    this.background.add(tracked)
  }

  // ---------------------------------------------------------------- calling

  /**
   * The `count` live peers closest to the recipient's key in the DHT,
   * closest first, without the recipient and without us: a walk of the DHT
   * (not our routing table alone), see lookup(). [] when our routing table
   * is empty. TIMEOUT, PEER_NOT_FOUND when the walk fails; INVALID_PEER_ID.
   */
  async closestPeers (recipient: string, count: number, signal?: AbortSignal): Promise<string[]> {
    return await this.lookup(recipient, count, signal)
  }

  /**
   * Asks a mailbox peer to hold `sealed` for `recipient`. A refusal (quota,
   * rate limit, bad request) is an answer: `accepted` false with the reason.
   * Throws PEER_UNREACHABLE or TIMEOUT when the peer cannot be asked,
   * MALFORMED_FRAME when it answers nonsense, PAYLOAD_TOO_LARGE for an
   * envelope no mailbox takes.
   */
  async store (mailboxPeer: string, recipient: string, sealed: Uint8Array, signal?: AbortSignal): Promise<StoreResult> {
    const canonicalRecipient = parsePeerId(recipient).toString()
    if (sealed.byteLength > MAX_SEALED_BYTES) throw new OctetError('PAYLOAD_TOO_LARGE', `a sealed envelope of ${sealed.byteLength} bytes; mailboxes take at most ${MAX_SEALED_BYTES}`)
    const response = await this.exchange(mailboxPeer, signal, async (stream, callSignal) =>
      await callStore(stream, canonicalRecipient, sealed, { signal: callSignal, timeout: this.options.responseTimeout }))
    return {
      accepted: response.status === MailboxStatus.OK,
      status: statusName(response.status),
      reason: response.reason,
      count: response.count,
      ...(response.status === MailboxStatus.OK && response.duplicate ? { duplicate: true } : {})
    }
  }

  /**
   * Everything `mailboxPeer` holds for us, oldest first, all pages; each id
   * checked to be the sha-256 of its envelope. UNAUTHORIZED, RATE_LIMITED or
   * BAD_REQUEST when the mailbox refuses; as store() otherwise.
   */
  async fetch (mailboxPeer: string, signal?: AbortSignal): Promise<FetchedEnvelope[]> {
    const mailbox = parsePeerId(mailboxPeer).toString()
    const result = await this.exchange(mailbox, signal, async (stream, callSignal) =>
      await callFetch(stream, { recipient: this.self, limit: MAX_FETCH_LIMIT },
        async nonce => await signProof(this.components.privateKey, { mailbox, recipient: this.self, op: 'FETCH', nonce }),
        { signal: callSignal, timeout: this.options.responseTimeout, maxEnvelopes: CLIENT_MAX_FETCHED_ENVELOPES, maxBytes: CLIENT_MAX_FETCHED_BYTES }))
    if (result.response.status !== MailboxStatus.OK) throw refusalError(mailbox, 'FETCH', result.response)
    const seen = new Set<string>()
    return result.envelopes.filter(e => {
      const key = Buffer.from(e.id).toString('hex')
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
  }

  /** Asks `mailboxPeer` to drop envelopes it held for us; returns how many it dropped. Errors as fetch(). */
  async delete (mailboxPeer: string, ids: Uint8Array[], signal?: AbortSignal): Promise<number> {
    const mailbox = parsePeerId(mailboxPeer).toString()
    const unique = [...new Map(ids.map(id => [Buffer.from(id).toString('hex'), id])).values()]
    let deleted = 0
    for (let start = 0; start < unique.length; start += MAX_DELETE_IDS) {
      const chunk = unique.slice(start, start + MAX_DELETE_IDS)
      const response = await this.exchange(mailbox, signal, async (stream, callSignal) =>
        await callDelete(stream, { recipient: this.self, ids: chunk },
          async nonce => await signProof(this.components.privateKey, { mailbox, recipient: this.self, op: 'DELETE', nonce, ids: chunk }),
          { signal: callSignal, timeout: this.options.responseTimeout }))
      if (response.status !== MailboxStatus.OK) throw refusalError(mailbox, 'DELETE', response)
      deleted += response.count
    }
    return deleted
  }

  /**
   * Keeps a watch at each of `mailboxPeers` and at no other (an empty list
   * ends them all): each mailbox tells us as soon as it stores an envelope
   * for us, and `onNotify` hears of it. Watches renew themselves, register
   * again when a mailbox ends one or the peer reconnects, and end on stop().
   */
  watch (mailboxPeers: string[], onNotify: NotifyListener): void {
    if (!this.run.running) return
    this.watches.set(mailboxPeers.map(peer => parsePeerId(peer).toString()), onNotify)
  }

  /** Opens a stream to the mailbox and runs one exchange on it. */
  private async exchange<T> (mailboxPeer: string, signal: AbortSignal | undefined, run: (stream: Stream, signal: AbortSignal) => Promise<T>): Promise<T> {
    const stream = await this.openStream(mailboxPeer, signal)
    const callSignal = signal == null ? this.run.signal : AbortSignal.any([signal, this.run.signal])
    return await run(stream, callSignal)
  }

  /** A /octet/mailbox stream to the peer, dialling it if need be. PEER_UNREACHABLE, TIMEOUT, UNAVAILABLE. */
  private async openStream (mailboxPeer: string, signal: AbortSignal | undefined): Promise<Stream> {
    this.run.assertRunning()
    const id = parsePeerId(mailboxPeer)
    const dialTimeout = AbortSignal.timeout(this.options.dialTimeout)
    try {
      return await dialProtocolFindingPeer(this.components.libp2p, id, MAILBOX_PROTOCOL, this.run.signalFor(dialTimeout, signal))
    } catch (err) {
      throw this.run.abortError(signal, dialTimeout, `dialling the mailbox ${mailboxPeer}`) ??
        new OctetError('PEER_UNREACHABLE', `cannot reach the mailbox ${mailboxPeer}: ${errorMessage(err)}`, { cause: err })
    }
  }

  // ---------------------------------------------------------------- handoff

  /**
   * For each recipient we hold envelopes for: when we are no longer among the
   * `replicas` peers closest to its key (peers joined nearer to it), move
   * its envelopes to those peers. A handoff moves a copy, never multiplies
   * it: each envelope goes to the closest of them that did not hold it yet
   * (the others answer `duplicate`), and ours is dropped once one took it
   * or all held it already. So envelopes that should not be here (taken
   * within the closeness slack, or before these checks existed) cannot
   * spread, and the receiving peers apply their own checks (closeness,
   * prefix and peer limits, quotas) to what we hand them, as to any STORE.
   * What no peer took stays (and is tried again next round). Concurrent
   * callers share one round.
   */
  async handoff (signal?: AbortSignal): Promise<HandoffReport> {
    this.run.assertRunning()
    if (this.handoffRun == null) {
      this.handoffRun = this.handoffOnce(signal).finally(() => { this.handoffRun = undefined })
      this.track(this.handoffRun)
    }
    return await this.handoffRun
  }

  private async handoffOnce (signal?: AbortSignal): Promise<HandoffReport> {
    const mailbox = this.mailbox
    if (mailbox == null) return { recipients: 0, moved: 0 }
    const round = this.run.signalFor(AbortSignal.timeout(HANDOFF_TIMEOUT), signal)
    const k = this.options.replicas
    const report: HandoffReport = { recipients: 0, moved: 0 }
    for (const recipient of mailbox.recipients()) {
      if (round.aborted) break
      report.recipients++
      let ranked: string[]
      try {
        ranked = await this.lookup(recipient, k, round)
      } catch (err) {
        this.log.debug({ err: errorMessage(err) }, 'handoff: no closest peers for a recipient; keeping its envelopes')
        continue
      }
      const targets = ranked.slice(0, k)
      // with us, fewer than k peers: we are among the closest; or we are closer than the k-th
      const last = targets.at(-1)
      if (targets.length < k || last == null || isCloser(recipient, this.self, last)) continue
      report.moved += await this.handOver(mailbox, recipient, targets, round)
    }
    if (report.moved > 0) this.log.info(report, 'handed mailbox envelopes to peers closer to their recipients')
    return report
  }

  /** `targets` closest first. */
  private async handOver (mailbox: MailboxStore, recipient: string, targets: string[], signal: AbortSignal): Promise<number> {
    let moved = 0
    let after: string | undefined
    // a peer that refused or failed once this round is not asked again until the next
    const skip = new Set<string>()
    while (!signal.aborted && skip.size < targets.length) {
      const page = await mailbox.list(recipient, { after, limit: 100 })
      for (const envelope of page.envelopes) {
        let placed = false
        let heldByAll = true
        for (const target of targets) {
          if (signal.aborted) break
          if (skip.has(target)) {
            heldByAll = false
            continue
          }
          let result: StoreResult
          try {
            result = await this.store(target, recipient, envelope.sealed, signal)
          } catch {
            result = { accepted: false, status: 'BAD_REQUEST', reason: '', count: 0 }
          }
          if (!result.accepted) {
            skip.add(target)
            heldByAll = false
            continue
          }
          if (result.duplicate !== true) {
            placed = true
            break
          }
        }
        if (placed || (heldByAll && !signal.aborted)) {
          const deleted = await mailbox.delete(recipient, [envelope.id])
          moved += deleted
          this.tally.handedOff += deleted
        }
      }
      if (!page.more) break
      after = page.cursor
    }
    return moved
  }

  // ---------------------------------------------------------------- expiry

  /** Removes expired envelopes now (it also runs every sweepInterval); returns how many. */
  async sweep (): Promise<number> {
    const mailbox = this.mailbox
    if (mailbox == null) return 0
    try {
      const removed = await mailbox.sweep()
      this.tally.expiredRemoved += removed
      if (removed > 0) this.log.debug({ removed }, 'removed expired mailbox envelopes')
      return removed
    } catch (err) {
      if (this.run.running) this.log.warn({ err: errorMessage(err) }, 'sweeping expired mailbox envelopes failed')
      return 0
    }
  }

  // ---------------------------------------------------------------- serving

  /** A mailbox we watch came back: register at once rather than after the backoff. */
  private readonly onConnect = (event: CustomEvent<PeerId>): void => {
    this.watches.reconnected(event.detail.toString())
  }

  private readonly onStream = (stream: Stream, connection: Connection): void => {
    const task = this.serve(stream, connection.remotePeer.toString(), networkPrefix(connection.remoteAddr))
      .finally(() => { this.inbound.delete(stream) })
    this.inbound.set(stream, task)
  }

  private async serve (stream: Stream, remotePeer: string, prefix: string): Promise<void> {
    const mailbox = this.mailbox
    if (!this.run.running || mailbox == null) {
      stream.abort(this.run.stoppedError())
      return
    }
    let internal: unknown
    // why our own checks refused a STORE, where the wire status alone does not say
    let refusal: StoreRefusal | undefined
    const guarded = <A extends unknown[], R>(step: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
      try {
        return await step(...args)
      } catch (err) {
        internal = err
        throw err
      }
    }
    const backend: MailboxBackend = {
      self: this.self,
      remotePeer,
      admit: (op) => {
        const limiter = op === 'STORE' ? this.storeLimiter : op === 'WATCH' ? this.watchLimiter : this.proofLimiter
        if (!limiter.tryTake(remotePeer)) return false
        // fresh PeerIds get fresh buckets above; the prefix they come from does not
        if (op === 'STORE' && !this.prefixStoreLimiter.tryTake(prefix)) {
          refusal = 'PREFIX_RATE_LIMITED'
          return false
        }
        return true
      },
      store: guarded(async (recipient: string, sealed: Uint8Array) => {
        const rank = this.closestRank(recipient, remotePeer)
        if (rank != null) {
          refusal = 'NOT_CLOSEST'
          return { status: MailboxStatus.BAD_REQUEST, reason: `this mailbox is not among the ${rank} peers closest to ${recipient} by its routing table; store at the closest peers` }
        }
        const cost = chargedBytes(sealed.byteLength)
        if (!this.prefixBytes.tryTake(prefix, cost)) {
          refusal = 'PREFIX_QUOTA'
          return { status: MailboxStatus.QUOTA_EXCEEDED, reason: `your network (${prefix}) stored its share of this mailbox for now (${this.options.prefixMaxBytes} bytes per ${Math.round(this.options.ttl / 1000)} s)` }
        }
        const result = await mailbox.put(recipient, sealed).catch((err: unknown) => {
          this.prefixBytes.refund(prefix, cost)
          throw err
        })
        // only what is held now counts against the prefix
        if (result.status !== 'stored') this.prefixBytes.refund(prefix, cost)
        if (result.status === 'quota') return { status: MailboxStatus.QUOTA_EXCEEDED, reason: result.reason }
        // a duplicate was announced when it first came
        if (result.status === 'stored') this.notifyWatchers(recipient, result.count)
        return { status: MailboxStatus.OK, count: result.count, duplicate: result.status === 'duplicate' }
      }),
      page: guarded(async (recipient: string, after: string | undefined, limit: number, maxBytes: number) =>
        await mailbox.list(recipient, { after, limit, maxBytes })),
      delete: guarded(async (recipient: string, ids: Uint8Array[]) => await mailbox.delete(recipient, ids)),
      watch: (recipient, notify) => {
        const registration = this.watchers.register(recipient, notify)
        if (!registration.accepted) return { accepted: false, status: MailboxStatus.QUOTA_EXCEEDED, reason: registration.reason }
        return { accepted: true, watch: registration.watch, count: mailbox.usageOf(recipient).count }
      }
    }
    try {
      this.count(await serveMailbox(stream, backend, { timeout: this.options.requestTimeout }), remotePeer, refusal)
    } catch (err) {
      if (!this.run.running) return
      if (internal != null) {
        this.log.warn({ err: internal }, 'the mailbox store failed while serving a request')
        return
      }
      this.tally.badFrames++
      const code = isOctetError(err) ? err.code : 'STREAM_ERROR'
      this.refusals.refuse({ counter: `mailbox.bad-stream.${code}`, level: 'debug', peer: remotePeer, fields: { peer: remotePeer, code, err: errorMessage(err) }, message: 'reset a bad mailbox stream' })
    }
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
  private closestRank (recipient: string, storer: string): number | undefined {
    const wanted = this.options.replicas + this.options.closestSlack
    const closest = this.components.dht.closestInTable(kadId(recipient), wanted, [recipient, storer])
    if (closest == null) return undefined
    const closer = closest.filter(peer => isCloser(recipient, peer, this.self))
    return closer.length >= wanted ? wanted : undefined
  }

  /** Runs on the store path: synchronous, and a failure is a count and a debug line, never the store's. */
  private notifyWatchers (recipient: string, count: number): void {
    const { told, failed } = this.watchers.notify(recipient, count)
    this.tally.notifiesSent += told
    this.tally.notifyFailures += failed
    if (failed > 0) this.log.debug({ failed }, 'a mailbox notify could not be queued')
  }

  /**
   * Counts a served request, and every refusal through `refusals` (one place
   * for /v1/stats and the log). A refused STORE is logged without the
   * storing peer: who stores for whom is what a mailbox must not write down.
   */
  private count (outcome: ServeOutcome, remotePeer: string, refusal: StoreRefusal | undefined): void {
    const c = this.tally
    const { op, status } = outcome
    if (op === MailboxOp.WATCH) {
      if (status !== MailboxStatus.OK) {
        c.watchesRefused++
        if (status === MailboxStatus.RATE_LIMITED) c.rateLimited++
        this.refusals.refuse({ counter: `mailbox.watch.refused.${status}`, level: 'debug', peer: remotePeer, fields: { peer: remotePeer, status, reason: outcome.reason }, message: 'refused a mailbox watch' })
      } else {
        c.watchesAccepted++
      }
      if (outcome.notifyFailed === true) {
        c.notifyFailures++
        this.log.debug({ peer: remotePeer, reason: outcome.reason }, 'a watcher did not take its notify; its watch ended')
      }
      return
    }
    if (op === MailboxOp.STORE) {
      if (status === MailboxStatus.OK) {
        c.storesAccepted++
        return
      }
      const code: StoreRefusal | undefined = refusal ?? (status === MailboxStatus.QUOTA_EXCEEDED || status === MailboxStatus.RATE_LIMITED || status === MailboxStatus.BAD_REQUEST ? status : undefined)
      if (code == null) return
      c.storesRefused[code]++
      if (code === 'RATE_LIMITED' || code === 'PREFIX_RATE_LIMITED') c.rateLimited++
      this.refusals.refuse({ counter: `mailbox.store.refused.${code}`, level: code === 'QUOTA_EXCEEDED' || code === 'PREFIX_QUOTA' ? 'info' : 'debug', peer: remotePeer, fields: { code, reason: outcome.reason }, message: 'refused a mailbox store' })
      return
    }
    if (status === MailboxStatus.UNAUTHORIZED) {
      c.unauthorized++
      this.refusals.refuse({ counter: `mailbox.${op === MailboxOp.FETCH ? 'fetch' : 'delete'}.refused.UNAUTHORIZED`, level: 'info', peer: remotePeer, fields: { peer: remotePeer, op }, message: 'refused a mailbox request whose proof does not verify' })
    } else if (status === MailboxStatus.BAD_REQUEST || status === MailboxStatus.RATE_LIMITED) {
      if (status === MailboxStatus.BAD_REQUEST) c.badRequests++
      else c.rateLimited++
      this.refusals.refuse({ counter: `mailbox.${op === MailboxOp.FETCH ? 'fetch' : 'delete'}.refused.${status}`, level: 'debug', peer: remotePeer, fields: { peer: remotePeer, op, reason: outcome.reason }, message: 'refused a mailbox request' })
    } else if (status === MailboxStatus.OK && op === MailboxOp.FETCH) {
      c.fetches++
      c.envelopesServed += outcome.count
    } else if (status === MailboxStatus.OK && op === MailboxOp.DELETE) {
      c.deletes++
      c.envelopesDeleted += outcome.count
    }
  }

  // ---------------------------------------------------------------- helpers

  /**
   * The `count` live peers closest to the recipient's key, closest first,
   * without the recipient and us.
   *
   * kad-dht's FINAL_PEER events list only the peers the walk queried and
   * that answered; and the walk queries a referred peer only when it is
   * closer to the key than the peer that named it. With a sparse routing
   * table (a small network, a node that just joined) the true closest peers
   * can be named by some answer and never queried, so two nodes would
   * disagree on who holds a recipient's mailbox. So the candidates are the
   * peers that answered plus the peers named in answers, ranked by distance;
   * a named-only candidate counts once it is dialled.
   */
  private async lookup (recipient: string, count: number, signal?: AbortSignal): Promise<string[]> {
    const target = parsePeerId(recipient)
    this.run.assertRunning()
    if (count <= 0) return []
    const timeout = AbortSignal.timeout(this.options.closestPeersTimeout)
    let answered: Set<string>
    let named: Set<string>
    try {
      ({ answered, named } = await this.components.dht.walk(target.toMultihash().bytes, this.run.signalFor(timeout, signal)))
    } catch (err) {
      throw this.run.abortError(signal, timeout, `looking up the peers closest to ${recipient}`) ??
        new OctetError('PEER_NOT_FOUND', `the DHT walk towards ${recipient} failed: ${errorMessage(err)}`, { cause: err })
    }
    const canonical = target.toString()
    const ranked = sortByDistance(canonical, [...new Set([...answered, ...named])].filter(peer => peer !== this.self && peer !== canonical))
    const chosen: string[] = []
    let next = 0
    while (chosen.length < count && next < ranked.length) {
      const batch = ranked.slice(next, next + count - chosen.length)
      next += batch.length
      const alive = await Promise.all(batch.map(async peer => answered.has(peer) || await this.reachable(peer, signal)))
      batch.forEach((peer, i) => { if (alive[i] === true) chosen.push(peer) })
    }
    return chosen
  }

  /** Whether a peer named by the DHT (not heard from in this walk) can be dialled. */
  private async reachable (peer: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.components.libp2p.dial(parsePeerId(peer), { signal: this.run.signalFor(AbortSignal.timeout(PROBE_TIMEOUT), signal) })
      return true
    } catch {
      return false
    }
  }
}

function statusName (status: MailboxStatus): MailboxStatusName {
  switch (status) {
    case MailboxStatus.OK:
    case MailboxStatus.QUOTA_EXCEEDED:
    case MailboxStatus.RATE_LIMITED:
    case MailboxStatus.UNAUTHORIZED:
    case MailboxStatus.BAD_REQUEST:
      return status
    default:
      throw new OctetError('MALFORMED_FRAME', `a mailbox answer with status ${status}`)
  }
}

function refusalError (mailbox: string, op: string, response: MailboxResponse): OctetError {
  const why = response.reason === '' ? response.status : response.reason
  switch (response.status) {
    case MailboxStatus.UNAUTHORIZED:
      return new OctetError('UNAUTHORIZED', `the mailbox ${mailbox} refused our ${op}: ${why}`)
    case MailboxStatus.RATE_LIMITED:
      return new OctetError('RATE_LIMITED', `the mailbox ${mailbox} refused our ${op} for now: ${why}`)
    case MailboxStatus.BAD_REQUEST:
      return new OctetError('BAD_REQUEST', `the mailbox ${mailbox} refused our ${op}: ${why}`)
    default:
      return new OctetError('MALFORMED_FRAME', `the mailbox ${mailbox} answered our ${op} with ${response.status}`)
  }
}
