import type { Connection, Stream } from '@libp2p/interface'
import { errorMessage, isOctetError } from '../errors.js'
import type { Logger } from '../logger.js'
import { networkPrefix } from '../node/addresses.js'
import type { Refusals } from '../refusals.js'
import type { ServiceRun } from '../service-run.js'
import { MailboxOp, MailboxStatus } from '../wire/mailbox.pb.js'
import type { MailboxAdmission } from './admission.js'
import type { MailboxCounters, StoreRefusal } from './counters.js'
import { serveMailbox, type MailboxBackend, type ServeOutcome } from './protocol-serve.js'
import { chargedBytes, type MailboxStore } from './store.js'
import { WatcherRegistry, type WatchLimits } from './watchers.js'

/*
 * The serving side of the mailbox service: every inbound
 * /octet/mailbox/1.0.0 stream is served (protocol-serve.ts) against this
 * node's MailboxStore, with the admission rules (admission.ts) in front of
 * it, the watchers told of every store, and each outcome counted and every
 * refusal reported once (counters, `refusals`). The storing peer is used for
 * the rate limits and debug logs only, never written down.
 */

export interface MailboxServerInit {
  /** this node's PeerId */
  self: string
  /** the store served; undefined until the service opened it */
  mailbox: () => MailboxStore | undefined
  admission: MailboxAdmission
  watchLimits: WatchLimits
  /** the service's counters, added to here */
  counters: MailboxCounters
  refusals: Refusals
  log: Logger
  /** the service's run: streams that come when it is not running are reset */
  run: ServiceRun
  /** wait for a request or a proof */
  requestTimeout: number
}

export class MailboxServer {
  /** who watches for what we store */
  private readonly watchers: WatcherRegistry
  private readonly inbound = new Map<Stream, Promise<void>>()
  private readonly log: Logger

  constructor (private readonly init: MailboxServerInit) {
    this.log = init.log
    this.watchers = new WatcherRegistry(init.watchLimits)
  }

  /** Watches other peers hold at this mailbox now. */
  get watcherCount (): number {
    return this.watchers.size
  }

  /** Ends every watch and resets every inbound stream with `stopped`; resolves once their handlers are done. */
  async stop (stopped: Error): Promise<void> {
    this.watchers.endAll(stopped)
    for (const stream of this.inbound.keys()) stream.abort(stopped)
    await Promise.allSettled([...this.inbound.values()])
  }

  /** The handler of the protocol (libp2p.handle). */
  readonly onStream = (stream: Stream, connection: Connection): void => {
    const task = this.serve(stream, connection.remotePeer.toString(), networkPrefix(connection.remoteAddr))
      .finally(() => { this.inbound.delete(stream) })
    this.inbound.set(stream, task)
  }

  private async serve (stream: Stream, remotePeer: string, prefix: string): Promise<void> {
    const { run, admission, counters } = this.init
    const mailbox = this.init.mailbox()
    if (!run.running || mailbox == null) {
      stream.abort(run.stoppedError())
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
      self: this.init.self,
      remotePeer,
      admit: (op) => {
        const refused = admission.admit(op, remotePeer, prefix)
        // a peer's own limit needs no word: the wire status says RATE_LIMITED
        if (refused === 'PREFIX_RATE_LIMITED') refusal = refused
        return refused == null
      },
      store: guarded(async (recipient: string, sealed: Uint8Array) => {
        const rank = admission.closestRank(recipient, remotePeer)
        if (rank != null) {
          refusal = 'NOT_CLOSEST'
          return { status: MailboxStatus.BAD_REQUEST, reason: `this mailbox is not among the ${rank} peers closest to ${recipient} by its routing table; store at the closest peers` }
        }
        const cost = chargedBytes(sealed.byteLength)
        const overQuota = admission.chargePrefix(prefix, cost)
        if (overQuota != null) {
          refusal = 'PREFIX_QUOTA'
          return { status: MailboxStatus.QUOTA_EXCEEDED, reason: overQuota }
        }
        const result = await mailbox.put(recipient, sealed).catch((err: unknown) => {
          admission.refundPrefix(prefix, cost)
          throw err
        })
        // only what is held now counts against the prefix
        if (result.status !== 'stored') admission.refundPrefix(prefix, cost)
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
      this.count(await serveMailbox(stream, backend, { timeout: this.init.requestTimeout }), remotePeer, refusal)
    } catch (err) {
      if (!run.running) return
      if (internal != null) {
        this.log.warn({ err: internal }, 'the mailbox store failed while serving a request')
        return
      }
      counters.badFrames++
      const code = isOctetError(err) ? err.code : 'STREAM_ERROR'
      this.init.refusals.refuse({ counter: `mailbox.bad-stream.${code}`, level: 'debug', peer: remotePeer, fields: { peer: remotePeer, code, err: errorMessage(err) }, message: 'reset a bad mailbox stream' })
    }
  }

  /** Runs on the store path: synchronous, and a failure is a count and a debug line, never the store's. */
  private notifyWatchers (recipient: string, count: number): void {
    const { told, failed } = this.watchers.notify(recipient, count)
    this.init.counters.notifiesSent += told
    this.init.counters.notifyFailures += failed
    if (failed > 0) this.log.debug({ failed }, 'a mailbox notify could not be queued')
  }

  /**
   * Counts a served request, and every refusal through `refusals` (one place
   * for /v1/stats and the log). A refused STORE is logged without the
   * storing peer: who stores for whom is what a mailbox must not write down.
   */
  private count (outcome: ServeOutcome, remotePeer: string, refusal: StoreRefusal | undefined): void {
    const c = this.init.counters
    const { op, status } = outcome
    if (op === MailboxOp.WATCH) {
      if (status !== MailboxStatus.OK) {
        c.watchesRefused++
        if (status === MailboxStatus.RATE_LIMITED) c.rateLimited++
        this.init.refusals.refuse({ counter: `mailbox.watch.refused.${status}`, level: 'debug', peer: remotePeer, fields: { peer: remotePeer, status, reason: outcome.reason }, message: 'refused a mailbox watch' })
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
      this.init.refusals.refuse({ counter: `mailbox.store.refused.${code}`, level: code === 'QUOTA_EXCEEDED' || code === 'PREFIX_QUOTA' ? 'info' : 'debug', peer: remotePeer, fields: { code, reason: outcome.reason }, message: 'refused a mailbox store' })
      return
    }
    if (status === MailboxStatus.UNAUTHORIZED) {
      c.unauthorized++
      this.init.refusals.refuse({ counter: `mailbox.${op === MailboxOp.FETCH ? 'fetch' : 'delete'}.refused.UNAUTHORIZED`, level: 'info', peer: remotePeer, fields: { peer: remotePeer, op }, message: 'refused a mailbox request whose proof does not verify' })
    } else if (status === MailboxStatus.BAD_REQUEST || status === MailboxStatus.RATE_LIMITED) {
      if (status === MailboxStatus.BAD_REQUEST) c.badRequests++
      else c.rateLimited++
      this.init.refusals.refuse({ counter: `mailbox.${op === MailboxOp.FETCH ? 'fetch' : 'delete'}.refused.${status}`, level: 'debug', peer: remotePeer, fields: { peer: remotePeer, op, reason: outcome.reason }, message: 'refused a mailbox request' })
    } else if (status === MailboxStatus.OK && op === MailboxOp.FETCH) {
      c.fetches++
      c.envelopesServed += outcome.count
    } else if (status === MailboxStatus.OK && op === MailboxOp.DELETE) {
      c.deletes++
      c.envelopesDeleted += outcome.count
    }
  }
}
