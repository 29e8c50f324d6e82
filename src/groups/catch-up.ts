/**
 * Catch-up, both sides of /octet/group-history/1.0.0 (the wire protocol is
 * history.ts): asking members for the messages we missed — on start (with
 * retries while nobody answers), after a gap in a sender's seqs, after we
 * joined, and on demand — and serving members what they missed, from the
 * log every member keeps. It owns the timers of those catch-ups and of the
 * release of early messages nobody could fill (see ingest.ts), and the
 * history streams in flight: stop() clears the one and ends the other.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { RateLimiter } from '../rate-limit.js'
import { RELAYED_CONNECTIONS_OK, dialProtocolFindingPeer, parsePeerId } from '../node/index.js'
import { HistoryStatus, decodeGroupMessage, type GroupMessage, type HistoryRequest } from './codec.js'
import {
  CATCH_UP_PEERS,
  CATCH_UP_RETRY_DELAYS,
  EARLY_HOLD_MAX,
  GAP_CATCH_UP_DELAY,
  HISTORY_BURST,
  HISTORY_DIAL_TIMEOUT,
  HISTORY_PROTOCOL,
  HISTORY_RATE_PER_SECOND,
  MAX_HISTORY_MESSAGES,
  MAX_INBOUND_HISTORY_STREAMS,
  START_CATCH_UP_DELAY
} from './constants.js'
import { others, type GroupContext } from './context.js'
import { callHistory, serveHistory, type HistoryBackend } from './history.js'
import { InFlight } from '../in-flight.js'
import type { IngestResult } from './ingest.js'

export interface CatchUpReport {
  /** members that answered */
  asked: number
  /** messages they sent */
  received: number
  /** of which new to us and stored */
  stored: number
}

/** What catch-up needs of gossip ingest: history is checked and stored like gossip. */
export interface CatchUpIngest {
  /** Call with the group's lock held. */
  ingest: (groupId: string, message: GroupMessage, bytes: Uint8Array, source?: string) => Promise<IngestResult>
  /** Stores the early messages whose gaps nobody could fill; takes the lock. */
  releaseEarly: (groupId: string) => Promise<number>
}

export class CatchUp {
  /** per group: a catch-up soon, and the peers to ask first */
  private readonly gapTimers = new Map<string, { timer: NodeJS.Timeout, prefer: Set<string> }>()
  /** per group: the release of early messages after EARLY_HOLD_MAX */
  private readonly releaseTimers = new Map<string, NodeJS.Timeout>()
  /** catch-ups on start and their retries */
  private readonly startTimers = new Set<NodeJS.Timeout>()
  private readonly inbound = new Set<Stream>()
  private readonly inFlight = new InFlight()
  private readonly limiter = new RateLimiter(HISTORY_RATE_PER_SECOND, HISTORY_BURST)
  private controller = new AbortController()
  private running = false

  constructor (private readonly ctx: GroupContext, private readonly messages: CatchUpIngest) {}

  /** Serves history; from now on, catch-ups are scheduled. */
  async start (): Promise<void> {
    this.controller = new AbortController()
    await this.ctx.libp2p.handle(HISTORY_PROTOCOL, (stream, connection) => { this.onHistoryStream(stream, connection) }, {
      maxInboundStreams: MAX_INBOUND_HISTORY_STREAMS,
      ...RELAYED_CONNECTIONS_OK
    })
    this.running = true
  }

  /** Clears every timer, aborts what is asked and served, and waits for it to end. */
  async stop (): Promise<void> {
    this.running = false
    for (const timer of this.startTimers) clearTimeout(timer)
    this.startTimers.clear()
    for (const { timer } of this.gapTimers.values()) clearTimeout(timer)
    this.gapTimers.clear()
    for (const timer of this.releaseTimers.values()) clearTimeout(timer)
    this.releaseTimers.clear()
    this.controller.abort(new OctetError('UNAVAILABLE', 'the group service stopped'))
    await this.ctx.libp2p.unhandle(HISTORY_PROTOCOL).catch(() => {})
    for (const stream of this.inbound) stream.abort(new Error('shutting down'))
    await this.inFlight.idle()
  }

  /** Asks up to CATCH_UP_PEERS members for what we miss (also done on start and on gaps). */
  async catchUp (groupId: string, prefer: string[] = []): Promise<CatchUpReport> {
    return await this.inFlight.track(this.ask(groupId, prefer))
  }

  /** After start: a catch-up soon, tried again while nobody answers. */
  onStart (groupId: string, attempt = 0): void {
    const delay = attempt === 0 ? START_CATCH_UP_DELAY : CATCH_UP_RETRY_DELAYS[attempt - 1]
    if (delay == null || !this.running) return
    const timer = setTimeout(() => {
      this.startTimers.delete(timer)
      this.track(this.catchUp(groupId).then(report => {
        if (report.asked === 0) this.onStart(groupId, attempt + 1)
      }))
    }, delay)
    timer.unref()
    this.startTimers.add(timer)
  }

  /**
   * A catch-up after GAP_CATCH_UP_DELAY (what is missing may still come by
   * gossip), asking `prefer` first; one per group at a time, the peers of
   * later calls added to it.
   */
  soon (groupId: string, prefer: string[]): void {
    if (!this.running) return
    const existing = this.gapTimers.get(groupId)
    if (existing != null) {
      for (const peer of prefer) existing.prefer.add(peer)
      return
    }
    const entry = { prefer: new Set(prefer), timer: setTimeout(() => {
      this.gapTimers.delete(groupId)
      this.track(this.catchUp(groupId, [...entry.prefer]))
    }, GAP_CATCH_UP_DELAY) }
    entry.timer.unref()
    this.gapTimers.set(groupId, entry)
  }

  private async ask (groupId: string, prefer: string[]): Promise<CatchUpReport> {
    const { ctx } = this
    const report: CatchUpReport = { asked: 0, received: 0, stored: 0 }
    const record = await ctx.db.group(groupId)
    if (record?.state !== 'joined') return report
    const doc = ctx.db.doc(record)
    const connected = doc.members.filter(m => m !== ctx.self && ctx.libp2p.getConnections(parsePeerId(m)).length > 0)
    const candidates = [...new Set([...prefer, ...shuffle(connected), ...shuffle(others(doc, ctx.self))])]
      .filter(m => m !== ctx.self && doc.members.includes(m))
    for (const peer of candidates) {
      if (report.asked >= CATCH_UP_PEERS || !this.running) break
      try {
        const messages = await this.askHistory(peer, await this.historyRequest(groupId))
        report.asked += 1
        report.received += messages.length
        report.stored += await this.ingestHistory(groupId, messages, peer)
      } catch (err) {
        ctx.count(`group.catch-up.failed.${isOctetError(err) ? err.code : 'ERROR'}`)
        ctx.log.debug({ groupId, peer, err: errorMessage(err) }, 'a member did not answer a catch-up request')
      }
    }
    if (report.stored > 0) ctx.log.info({ groupId, ...report }, 'caught up on group messages')
    // members answered and what is still missing is not to be had: do not hold the rest back
    if (report.asked > 0) await this.messages.releaseEarly(groupId)
    else this.scheduleRelease(groupId)
    return report
  }

  /** Nobody answered a catch-up: early messages wait at most EARLY_HOLD_MAX for another try. */
  private scheduleRelease (groupId: string): void {
    if (!this.running || this.releaseTimers.has(groupId)) return
    const timer = setTimeout(() => {
      this.releaseTimers.delete(groupId)
      this.track(this.messages.releaseEarly(groupId))
    }, EARLY_HOLD_MAX)
    timer.unref()
    this.releaseTimers.set(groupId, timer)
  }

  private async historyRequest (groupId: string): Promise<HistoryRequest> {
    const record = await this.ctx.requireGroup(groupId)
    const known = new Map<string, number>(Object.entries(record.senders).map(([sender, track]) => [sender, track.contiguous]))
    known.set(this.ctx.self, record.nextSeq - 1)
    return { groupId, known, limit: MAX_HISTORY_MESSAGES }
  }

  private async askHistory (peer: string, request: HistoryRequest): Promise<Uint8Array[]> {
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(HISTORY_DIAL_TIMEOUT)])
    let stream: Stream
    try {
      stream = await dialProtocolFindingPeer(this.ctx.libp2p, parsePeerId(peer), HISTORY_PROTOCOL, signal)
    } catch (err) {
      throw new OctetError('PEER_UNREACHABLE', `cannot reach ${peer}: ${errorMessage(err)}`, { cause: err })
    }
    return await callHistory(stream, request, undefined, this.controller.signal)
  }

  /** Messages a member sent us: checked and stored like gossip, per sender in seq order. */
  private async ingestHistory (groupId: string, encoded: Uint8Array[], peer: string): Promise<number> {
    const { ctx } = this
    const messages: Array<{ message: GroupMessage, bytes: Uint8Array }> = []
    for (const bytes of encoded) {
      try {
        const message = decodeGroupMessage(bytes)
        if (message.groupId !== groupId) throw new OctetError('MALFORMED_FRAME', 'a message of another group')
        messages.push({ message, bytes })
      } catch (err) {
        ctx.count(`group.history.rejected.${isOctetError(err) ? err.code : 'MALFORMED_FRAME'}`)
      }
    }
    messages.sort((a, b) => a.message.sender.localeCompare(b.message.sender) || a.message.seq - b.message.seq)
    let stored = 0
    await ctx.lock.run(groupId, async () => {
      for (const { message, bytes } of messages) {
        const result = await this.messages.ingest(groupId, message, bytes, peer)
        if (result === 'stored') stored++
        if (typeof result === 'object') {
          // a member can withhold, not forge: a bad one here is worth knowing about
          ctx.refuse({ counter: `group.history.rejected.${result.code}`, peer, fields: { groupId, peer, sender: message.sender, seq: message.seq, code: result.code }, message: 'refused a message from catch-up' })
        }
      }
    })
    ctx.count('group.history.stored', stored)
    return stored
  }

  private onHistoryStream (stream: Stream, connection: Connection): void {
    const { ctx } = this
    const remote = connection.remotePeer.toString()
    this.inbound.add(stream)
    const backend: HistoryBackend = {
      admit: peer => this.limiter.tryTake(peer),
      select: async (peer, request) => await this.selectHistory(peer, request)
    }
    this.track(serveHistory(stream, remote, backend)
      .then(outcome => {
        if (outcome.status === HistoryStatus.HISTORY_OK) {
          ctx.count('group.history.served.HISTORY_OK')
          ctx.count('group.history.served-messages', outcome.sent)
        } else if (outcome.status !== HistoryStatus.HISTORY_NOT_A_MEMBER) {
          // (a non-member was counted and logged where it was found out)
          const code = String(outcome.status).replace(/^HISTORY_/, '')
          ctx.refuse({ counter: `group.history.refused.${code}`, level: 'debug', peer: remote, fields: { peer: remote, code }, message: 'refused a group history request' })
        }
      }, (err: unknown) => {
        ctx.refuse({ counter: `group.history.bad-request.${isOctetError(err) ? err.code : 'STREAM_ERROR'}`, level: 'debug', peer: remote, fields: { peer: remote, err: errorMessage(err) }, message: 'closed a bad group history stream' })
      })
      .finally(() => { this.inbound.delete(stream) }))
  }

  /** What a member may have: kept messages since it became a member that it does not hold. */
  private async selectHistory (peer: string, request: HistoryRequest): ReturnType<HistoryBackend['select']> {
    const { ctx } = this
    const record = await ctx.db.group(request.groupId)
    if (record?.state !== 'joined') return { status: HistoryStatus.HISTORY_UNKNOWN_GROUP, reason: 'not a member of this group', messages: [] }
    const doc = ctx.db.doc(record)
    if (!doc.members.includes(peer)) {
      ctx.refuse({ counter: 'group.history.refused.NOT_A_MEMBER', level: 'info', peer, fields: { groupId: request.groupId, peer }, message: 'refused group history to a non-member' })
      return { status: HistoryStatus.HISTORY_NOT_A_MEMBER, reason: 'you are not in the member list', messages: [] }
    }
    const since = record.memberSince[peer] ?? doc.version
    const entries = []
    for await (const entry of ctx.db.logEntries(request.groupId)) {
      if (entry.version < since || entry.sender === peer) continue
      if (entry.seq <= (request.known.get(entry.sender) ?? 0)) continue
      entries.push(entry)
    }
    entries.sort((a, b) => a.sender.localeCompare(b.sender) || a.seq - b.seq)
    return { status: HistoryStatus.HISTORY_OK, messages: await ctx.db.loggedBytes(entries.slice(0, request.limit)) }
  }

  /** Background work that stop() waits for; a failure is only logged. */
  private track (task: Promise<unknown>): void {
    this.inFlight.track(task).catch((err: unknown) => { this.ctx.log.debug({ err: errorMessage(err) }, 'group background task failed') })
  }
}

function shuffle<T> (items: T[]): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j] as T, copy[i] as T]
  }
  return copy
}
