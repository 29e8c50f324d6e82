import type { PeerId, PrivateKey } from '@libp2p/interface'
import { errorMessage } from '../errors.js'
import { ServiceRun } from '../service-run.js'
import type { Logger } from '../logger.js'
import { RELAYED_CONNECTIONS_OK, parsePeerId, type Dht, type OctetLibp2p } from '../node/index.js'
import { Refusals } from '../refusals.js'
import type { Store } from '../store/database.js'
import { MailboxAdmission } from './admission.js'
import { MailboxCaller, type StoreResult } from './caller.js'
import {
  CLOSEST_PEERS_TIMEOUT,
  DEFAULT_TTL,
  DIAL_TIMEOUT,
  HANDOFF_INTERVAL,
  MAILBOX_PROTOCOL,
  MAILBOX_REPLICAS,
  MAX_BYTES_PER_RECIPIENT,
  MAX_ENVELOPES_PER_RECIPIENT,
  MAX_INBOUND_MAILBOX_STREAMS,
  MAX_OUTBOUND_MAILBOX_STREAMS,
  MAX_TOTAL_BYTES,
  PREFIX_MAX_BYTES,
  PREFIX_STORE_BURST,
  PREFIX_STORE_RATE_PER_SECOND,
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
import { newCounters, type MailboxCounters } from './counters.js'
import { Handoff, type HandoffReport } from './handoff.js'
import type { FetchedEnvelope } from './protocol-call.js'
import { MailboxServer } from './server.js'
import { MailboxStore, type MailboxUsage } from './store.js'
import { WatchClient, type NotifyListener, type WatchClientCounters } from './watch-client.js'

export { MAILBOX_PROTOCOL } from './constants.js'
export type { MailboxStatusName, StoreResult } from './caller.js'
export type { MailboxCounters, StoreRefusal } from './counters.js'
export type { HandoffReport } from './handoff.js'
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
   * (default: replicas, see MailboxAdmission.closestRank)
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
 *
 * This class is the service's lifecycle and public API, and composes its
 * parts: the serving side (server.ts, with the limits of admission.ts), the
 * calling side (caller.ts), our own watches (watch-client.ts) and the
 * handoff (handoff.ts). They share the counters (counters.ts) and the run.
 */
export class MailboxService {
  private readonly tally: MailboxCounters = newCounters()
  private readonly options: Required<Omit<MailboxServiceOptions, 'now'>> & { now: () => number }
  private readonly server: MailboxServer
  private readonly caller: MailboxCaller
  /** calling: our own watches at the mailbox peers closest to us */
  private readonly watches: WatchClient
  private readonly handoffs: Handoff
  private readonly background = new Set<Promise<unknown>>()
  private mailbox: MailboxStore | undefined
  private readonly run = new ServiceRun('the mailbox service')
  private timers: NodeJS.Timeout[] = []
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
    this.server = new MailboxServer({
      self: this.self,
      mailbox: () => this.mailbox,
      admission: new MailboxAdmission({ self: this.self, dht: components.dht, limits: this.options }),
      watchLimits: { perPeer: this.options.maxWatchesPerPeer, total: this.options.maxWatches, ttl: this.options.watchTtl },
      counters: this.tally,
      refusals: components.refusals ?? new Refusals({ increment: () => {} }, this.log),
      log: this.log,
      run: this.run,
      requestTimeout: this.options.requestTimeout
    })
    this.caller = new MailboxCaller({
      libp2p: components.libp2p,
      dht: components.dht,
      privateKey: components.privateKey,
      self: this.self,
      run: this.run,
      responseTimeout: this.options.responseTimeout,
      dialTimeout: this.options.dialTimeout,
      closestPeersTimeout: this.options.closestPeersTimeout
    })
    this.watches = new WatchClient({
      self: this.self,
      openStream: async (peer, signal) => await this.caller.openStream(peer, signal),
      log: this.log,
      responseTimeout: this.options.responseTimeout,
      renewInterval: this.options.watchRenewInterval,
      retryFirstDelay: this.options.watchRetryFirstDelay,
      retryMaxDelay: this.options.watchRetryMaxDelay,
      minLifetime: WATCH_MIN_LIFETIME
    })
    this.handoffs = new Handoff({
      self: this.self,
      replicas: this.options.replicas,
      caller: this.caller,
      counters: this.tally,
      run: this.run,
      log: this.log,
      track: task => { this.track(task) }
    })
  }

  /** Counters since start (a copy). */
  get counters (): Readonly<MailboxCounters> {
    return { ...this.tally, storesRefused: { ...this.tally.storesRefused } }
  }

  /** Watches other peers hold at this mailbox now. */
  watcherCount (): number {
    return this.server.watcherCount
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
      await libp2p.handle(MAILBOX_PROTOCOL, this.server.onStream, {
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
      // the server ends its watches and resets its streams at once, then waits for them with the rest
      await Promise.allSettled([this.server.stop(stopped), ...this.background, this.watches.stop()])
    })
  }

  /** Work that stop() waits for; its failures are the caller's to report. */
  private track (task: Promise<unknown>): void {
    const tracked = task.catch(() => {}).finally(() => { this.background.delete(tracked) })
    this.background.add(tracked)
  }

  // ---------------------------------------------------------------- calling (caller.ts)

  /**
   * The `count` live peers closest to the recipient's key in the DHT,
   * closest first, without the recipient and without us: a walk of the DHT
   * (not our routing table alone), see MailboxCaller.closestPeers. [] when
   * our routing table is empty. TIMEOUT, PEER_NOT_FOUND when the walk fails;
   * INVALID_PEER_ID.
   */
  async closestPeers (recipient: string, count: number, signal?: AbortSignal): Promise<string[]> {
    return await this.caller.closestPeers(recipient, count, signal)
  }

  /**
   * Asks a mailbox peer to hold `sealed` for `recipient`: a refusal is an
   * answer, `accepted` false with the reason (see MailboxCaller.store).
   */
  async store (mailboxPeer: string, recipient: string, sealed: Uint8Array, signal?: AbortSignal): Promise<StoreResult> {
    return await this.caller.store(mailboxPeer, recipient, sealed, signal)
  }

  /** Everything `mailboxPeer` holds for us, oldest first (see MailboxCaller.fetch). */
  async fetch (mailboxPeer: string, signal?: AbortSignal): Promise<FetchedEnvelope[]> {
    return await this.caller.fetch(mailboxPeer, signal)
  }

  /** Asks `mailboxPeer` to drop envelopes it held for us; returns how many it dropped (see MailboxCaller.delete). */
  async delete (mailboxPeer: string, ids: Uint8Array[], signal?: AbortSignal): Promise<number> {
    return await this.caller.delete(mailboxPeer, ids, signal)
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

  /** A mailbox we watch came back: register at once rather than after the backoff. */
  private readonly onConnect = (event: CustomEvent<PeerId>): void => {
    this.watches.reconnected(event.detail.toString())
  }

  // ---------------------------------------------------------------- handoff (handoff.ts)

  /**
   * Moves the envelopes of recipients we are no longer among the closest
   * peers of to the peers that are (see Handoff.round). Concurrent callers
   * share one round.
   */
  async handoff (signal?: AbortSignal): Promise<HandoffReport> {
    return await this.handoffs.round(this.mailbox, signal)
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
}
