import type { SignalCrypto } from '../crypto/index.js'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { InFlight } from '../in-flight.js'
import type { Logger } from '../logger.js'
import type { StoreOp } from '../store/database.js'
import { AckStatus, type Ack, type BatchItem } from '../wire/codec.js'
import { MAX_SESSION_RESETS, MESSAGE_TTL, PEER_DISK_FULL_RETRY_DELAY, RETRY_FIRST_DELAY, RETRY_MAX_DELAY, SEND_WINDOW } from './constants.js'
import type { BundleSource, MailboxClient } from './clients.js'
import { DISK_FULL_REASON, type DmTransport, type OutboundEnvelope } from './dm-protocol.js'
import type { KeyedEntry } from './outbox-index.js'
import type { EventLog, NewEvent } from './events.js'
import { MailboxDeposit } from './mailbox-deposit.js'
import type { MessageRecord, MessageStatus, MessagingStore } from './records.js'
import { Sealer, packBatches } from './sealing.js'
import type { Counters } from './stats.js'

export interface SenderInit {
  peerId: string
  db: MessagingStore
  crypto: SignalCrypto
  bundles: BundleSource
  transport: DmTransport
  events: EventLog
  counters: Counters
  log: Logger
  now: () => number
  /** offline delivery; without it undeliverable messages only wait and retry */
  mailbox?: { client: MailboxClient, replicas: number }
}

interface PeerQueue {
  running: boolean
  again: boolean
  timer?: NodeJS.Timeout
  /** the next pass sends the whole outbox, backoff or not: the peer just showed it is reachable */
  dueNow?: boolean
  /** when a pass was last forced (peerReachable): at most one per REACHABLE_RETRY_SPACING */
  forcedAt?: number
}

/** A peer that writes to us often does not make us retry its outbox more often than this. */
const REACHABLE_RETRY_SPACING = 1000

/**
 * The outbound half: drains each peer's outbox in order. Envelopes are
 * encrypted in sequence, written in windows without waiting (pipelined), and
 * leave the outbox only when the peer acknowledged them. Anything else is
 * retried with backoff, across restarts, until MESSAGE_TTL.
 *
 * Rule: a Signal message leaves this node (stream or mailbox) only once the
 * session state that sealed it is on disk. Otherwise a crash would roll the
 * ratchet back and the retry would seal other content under the same message
 * key — which the peer, having seen that key, takes for a duplicate. The
 * commit of a window's `sent` statuses carries that state (the pipeline puts
 * every write-behind change made before a commit into its batch); a mailbox
 * copy waits for crypto.flushWrites.
 *
 * Writes (event log commits, each on disk when awaited): `sent` statuses
 * before a window leaves; then per ack the outbox entry's removal and the
 * status (delivered, failed); retry times (postpone); mailbox deposits
 * (mailbox-deposit.ts). Envelopes are built and sealed by sealing.ts.
 */
export class Sender {
  private readonly queues = new Map<string, PeerQueue>()
  private stopped = false
  private readonly abort = new AbortController()
  private readonly passes = new InFlight()
  private readonly sealer: Sealer
  /** undefined without mailboxes */
  private readonly depositor: MailboxDeposit | undefined

  constructor (private readonly init: SenderInit) {
    const { peerId, db, crypto, bundles, events, counters, log, now, mailbox } = init
    this.sealer = new Sealer({ peerId, db, crypto, bundles, counters, now, signal: this.abort.signal })
    if (mailbox != null) this.depositor = new MailboxDeposit({ db, events, crypto, sealer: this.sealer, counters, log, now, mailbox, signal: this.abort.signal })
  }

  /** Resumes every peer's outbox (after a restart). */
  async start (): Promise<void> {
    for (const peer of await this.init.db.peersWithOutbox()) this.kick(peer)
  }

  /**
   * Starts no pass any more, aborts dials and lookups, and resolves once every
   * pass in flight ended: the store may close after this. A pass waiting for
   * acks ends when they come, when the transport closes (Messenger.stop closes
   * it meanwhile), or at ACK_TIMEOUT; what was not acked stays in the outbox.
   */
  async stop (): Promise<void> {
    this.stopped = true
    this.abort.abort()
    for (const queue of this.queues.values()) clearTimeout(queue.timer)
    await this.passes.idle()
  }

  /** Something is due for `peer`: deliver now, or right after the pass under way. */
  kick (peer: string): void {
    if (this.stopped) return
    let queue = this.queues.get(peer)
    if (queue == null) {
      queue = { running: false, again: false }
      this.queues.set(peer, queue)
    }
    if (queue.running) {
      queue.again = true
      return
    }
    clearTimeout(queue.timer)
    queue.timer = undefined
    queue.running = true
    void this.passes.track(this.drain(peer, queue).finally(() => {
      queue.running = false
      // a kick that came in while the last pass was finishing must not be lost
      if (queue.again) this.kick(peer)
    }))
  }

  /**
   * The peer just wrote to us, so it is reachable now: what waits for it in
   * backoff (it was away: up to RETRY_MAX_DELAY) goes now. Without this, a
   * peer back from an absence gets our backlog only when the timer says so,
   * and the gap its mailboxes left holds its events (EVENT_HOLD_MAX) that long.
   */
  peerReachable (peer: string): void {
    const queue = this.queues.get(peer)
    // nothing was ever tried for it, or it is being sent to right now
    if (queue?.timer == null || this.stopped) return
    const at = this.init.now()
    if (queue.forcedAt != null && at - queue.forcedAt < REACHABLE_RETRY_SPACING) return
    queue.forcedAt = at
    queue.dueNow = true
    this.kick(peer)
  }

  /**
   * Passes over the peer's outbox until nothing is due; then a timer waits for
   * the next entry that is. A failed pass postpones what was due, so every
   * pass either empties the due set or pushes it into the future.
   */
  private async drain (peer: string, queue: PeerQueue): Promise<void> {
    try {
      while (!this.stopped) {
        queue.again = false
        const forced = queue.dueNow === true
        queue.dueNow = false
        const all = await this.init.db.outboxFor(peer)
        const now = this.init.now()
        // in order: once one entry is due, the peer's whole outbox goes, oldest first (a new
        // message must not overtake older ones that wait out a backoff). An identity change
        // waits for the user even when the peer is reachable
        const due = all.some(e => e.entry.nextAttemptAt <= now || (forced && e.entry.nextAttemptAt !== Number.MAX_SAFE_INTEGER)) ? all : []
        if (due.length === 0) {
          this.scheduleNext(peer, queue, all)
          return
        }
        try {
          await this.sealer.ensureSession(peer)
          for (let i = 0; i < due.length && !this.stopped; i += SEND_WINDOW) {
            await this.sendWindow(peer, due.slice(i, i + SEND_WINDOW))
          }
        } catch (err) {
          if (this.stopped) return
          // our own disk is full: nothing can be recorded; the pass starts over once it takes writes
          if (!this.init.db.store.writable) throw err
          if (isOctetError(err, 'PEER_UNREACHABLE') || isOctetError(err, 'TIMEOUT')) await this.depositor?.deposit(peer)
          await this.postpone(peer, err)
        }
      }
    } catch (err) {
      if (!this.init.db.store.writable) {
        this.init.log.warn({ peer }, 'outbox waits: the disk is full')
        void this.init.db.store.whenWritable().then(() => { this.kick(peer) })
        return
      }
      // the store failed under us: try the whole pass again later rather than stall the peer
      this.init.log.error({ peer, err }, 'outbox pass failed')
      this.scheduleRetry(peer, queue, RETRY_MAX_DELAY)
    }
  }

  private scheduleRetry (peer: string, queue: PeerQueue, delay: number): void {
    if (this.stopped) return
    clearTimeout(queue.timer)
    queue.timer = setTimeout(() => {
      queue.timer = undefined
      this.kick(peer)
    }, delay)
    queue.timer.unref()
  }

  private scheduleNext (peer: string, queue: PeerQueue, entries: KeyedEntry[]): void {
    if (entries.length === 0 || this.stopped) return
    const next = Math.min(...entries.map(e => e.entry.nextAttemptAt))
    if (next === Number.MAX_SAFE_INTEGER) return
    this.scheduleRetry(peer, queue, Math.max(0, next - this.init.now()))
  }


  private async sendWindow (peer: string, window: KeyedEntry[]): Promise<void> {
    const { db, events, transport, now } = this.init
    const items: Array<{ keyed: KeyedEntry, item: BatchItem, message?: MessageRecord }> = []
    const sentOps: StoreOp[] = []
    const sentEvents: NewEvent[] = []
    // one read for the window's messages rather than one per envelope
    const records = await db.messagesById(window.map(({ entry }) => entry.payload.kind === 'text' ? entry.payload.messageId : ''))
    for (const [i, keyed] of window.entries()) {
      const built = await this.sealer.buildItem(keyed.entry, records[i])
      if (built == null) {
        // its message is gone (or already final): nothing to deliver
        sentOps.push(db.delOp(db.outbox, keyed.key))
        continue
      }
      if (built.message?.status === 'queued') {
        const sent = { ...built.message, status: 'sent' as const, updatedAt: now() }
        built.message = sent
        sentOps.push(db.putStatus(sent))
        sentEvents.push({ type: 'message.status', data: { id: sent.id, peerId: peer, status: 'sent' } })
      }
      items.push({ keyed, ...built })
    }
    const outbound: OutboundEnvelope[] = []
    for (const group of packBatches(items.map(i => i.item))) outbound.push(await this.sealer.seal(peer, group))
    // the ratchet state that sealed them is on disk before they leave (see the class comment): the
    // pipeline writes every write-behind change made before a commit with it
    await events.commit(sentOps, sentEvents)
    // written now in one go, acked later (one ack per item); settled here so no rejection is ever unobserved
    const acks = (await transport.sendBatch(peer, outbound, this.abort.signal))
      .map(async ack => await ack.then(value => ({ ok: true as const, ack: value }), (err: unknown) => ({ ok: false as const, err })))
    const results = await Promise.all(acks)

    const ops: StoreOp[] = []
    const newEvents: NewEvent[] = []
    let failure: unknown
    let sessionLost = false
    items.forEach(({ keyed, message }, i) => {
      const result = results[i]
      if (result == null) return
      if (!result.ok) {
        failure ??= result.err
        return
      }
      // NO_SESSION: the peer has none with us; DECRYPT_FAILED: its session is not ours (it
      // reinstalled and wrote to us first, or restored a backup); REPLAYED: ours went back
      // (we restored a backup) and reused a message key. Ours is useless in every case
      if (result.ack.status === AckStatus.REJECTED && SESSION_LOST_REASONS.has(result.ack.reason) && keyed.entry.attempts < MAX_SESSION_RESETS) {
        sessionLost = true
        return
      }
      // not a failure of the message: it stays in the outbox and the pass is retried later
      if (result.ack.status === AckStatus.RATE_LIMITED) {
        failure ??= result.ack.reason === DISK_FULL_REASON
          ? new OctetError('DISK_FULL', 'the recipient cannot store messages now (its disk is full); they are sent again')
          : new OctetError('RATE_LIMITED', 'the peer asked us to slow down')
        return
      }
      this.applyAck(keyed, message, result.ack, ops, newEvents)
    })
    await events.commit(ops, newEvents)
    if (failure != null) throw failure
    if (sessionLost) {
      // the peer lost its state (reinstall, restore): start over from a fresh bundle, which
      // also tells whether its identity key changed
      await this.init.crypto.resetSession(peer)
      throw new OctetError('NO_SESSION', `${peer} could not decrypt: its session was reset`)
    }
  }

  private applyAck (keyed: KeyedEntry, message: MessageRecord | undefined, ack: Ack, ops: StoreOp[], newEvents: NewEvent[]): void {
    const { db, now, counters } = this.init
    const setStatus = (status: MessageStatus, reason?: string): void => {
      if (message == null || message.status === 'read') return
      const updated: MessageRecord = { ...message, status, updatedAt: now() }
      if (reason != null) updated.reason = reason
      else delete updated.reason
      ops.push(db.putStatus(updated))
      newEvents.push({ type: 'message.status', data: { id: updated.id, peerId: updated.peerId, status, ...(reason != null ? { reason } : {}) } })
    }
    switch (ack.status) {
      case AckStatus.ACCEPTED:
      case AckStatus.DUPLICATE:
        ops.push(db.delOp(db.outbox, keyed.key))
        setStatus('delivered')
        counters.increment('dm.delivered')
        break
      default:
        ops.push(db.delOp(db.outbox, keyed.key))
        setStatus('failed', refusalReason(ack.reason === '' ? String(ack.status) : ack.reason))
        counters.increment('dm.refused')
    }
  }


  /** Delivery failed for now: every due entry waits with backoff; an identity change waits for the user. */
  private async postpone (peer: string, err: unknown): Promise<void> {
    const { db, events, now, log, counters } = this.init
    const identityChanged = isOctetError(err, 'IDENTITY_CHANGED')
    const reason = identityChanged
      ? 'the recipient\'s identity key changed; compare safety numbers, then accept the change'
      : errorMessage(err)
    counters.increment(`dm.retry.${isOctetError(err) ? err.code : 'ERROR'}`)
    log.info({ peer, reason }, 'delivery postponed')
    const ops: StoreOp[] = []
    const newEvents: NewEvent[] = []
    const at = now()
    const due = (await db.outboxFor(peer)).filter(({ entry }) => entry.nextAttemptAt <= at)
    // one retry time for the whole peer: its messages go out again together, in order
    const attempts = Math.max(0, ...due.map(({ entry }) => entry.attempts)) + 1
    // a recipient with a full disk takes them as soon as it has space again: no growing backoff
    const delay = isOctetError(err, 'DISK_FULL') ? Math.min(retryDelay(attempts), PEER_DISK_FULL_RETRY_DELAY) : retryDelay(attempts)
    const retryAt = identityChanged ? Number.MAX_SAFE_INTEGER : at + delay
    for (const { key, entry } of due) {
      const message = entry.payload.kind === 'text' ? await db.message(entry.payload.messageId) : undefined
      if (at - entry.createdAt > MESSAGE_TTL) {
        ops.push(db.delOp(db.outbox, key))
        if (message != null) {
          ops.push(db.putStatus({ ...message, status: 'failed', reason: `not delivered within ${MESSAGE_TTL / 86_400_000} days: ${reason}`, updatedAt: at }))
          newEvents.push({ type: 'message.status', data: { id: message.id, peerId: peer, status: 'failed', reason } })
        }
        continue
      }
      // an identity change waits for the user (no timer): acceptIdentity() sends again
      ops.push(db.putOp(db.outbox, key, { ...entry, attempts, nextAttemptAt: retryAt, lastError: reason }))
      if (message != null && message.reason !== reason) {
        ops.push(db.putStatus({ ...message, reason, updatedAt: at }))
      }
    }
    if (identityChanged) newEvents.push({ type: 'identity.changed', data: { peerId: peer } })
    await events.commit(ops, newEvents, at)
  }

  /** After an identity change was accepted: everything held for the peer is due now. */
  async release (peer: string): Promise<void> {
    const { db, events } = this.init
    const ops = (await db.outboxFor(peer)).map(({ key, entry }) => db.putOp(db.outbox, key, { ...entry, nextAttemptAt: 0, attempts: 0 }))
    await events.commit(ops)
    this.kick(peer)
  }
}

/** Refusals that say our session with the peer cannot be used any more. */
const SESSION_LOST_REASONS: ReadonlySet<string> = new Set(['NO_SESSION', 'DECRYPT_FAILED', 'REPLAYED'])

/** The `reason` of a message the recipient refused for good, naming its code. */
function refusalReason (code: string): string {
  return `refused by the recipient (${code})`
}

/**
 * Whether a failed message's `reason` is a refusal for a session the peer
 * could not use, which a fresh session cures (see Messenger.resetSession):
 * also the messages a receiver with a full disk refused that way, before
 * receivers asked to retry instead.
 */
export function failedForLostSession (reason: string | undefined): boolean {
  const code = reason == null ? undefined : /^refused by the recipient \(([A-Z_]+)\)$/.exec(reason)?.[1]
  return code != null && SESSION_LOST_REASONS.has(code)
}

/** Doubling backoff with jitter, so many senders do not all retry at once after a peer returns. */
function retryDelay (attempts: number): number {
  const delay = Math.min(RETRY_MAX_DELAY, RETRY_FIRST_DELAY * 2 ** (attempts - 1))
  return Math.round(delay * (0.75 + Math.random() * 0.5))
}
