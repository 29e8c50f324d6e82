import type { Connection, Stream } from '@libp2p/interface'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { abortable } from '../abort.js'
import type { Logger } from '../logger.js'
import { RELAYED_CONNECTIONS_OK, dialProtocolFindingPeer, parsePeerId, type OctetLibp2p } from '../node/index.js'
import { AckStatus, decodeDmFrame, encodeDmFrame, type Ack, type AckStatusValue, type Envelope } from '../wire/codec.js'
import { messageIdToHex, type MessageId } from '../wire/ids.js'
import { writeFrames, FrameReader, untilClosed } from '../wire/framing.js'
import { MAX_FRAME_BYTES } from '../wire/limits.js'
import { ACK_TIMEOUT, DIAL_TIMEOUT, DM_PROTOCOL, INBOUND_IDLE_TIMEOUT, MAX_INBOUND_DM_STREAMS, STREAM_CLOSE_TIMEOUT } from './constants.js'
import type { Refusals } from '../refusals.js'

/**
 * The reason of a RATE_LIMITED ack from a receiver whose disk is full: the
 * envelope was not kept and should come again (the sender retries it soon,
 * not with the growing backoff of a rate limit).
 */
export const DISK_FULL_REASON = 'DISK_FULL'

export interface AckResult {
  status: AckStatusValue
  reason?: string
  /** a BATCH envelope that was opened: one ack per item instead of one for the envelope */
  items?: ItemAck[]
}

export interface ItemAck {
  id: MessageId
  status: AckStatusValue
  reason?: string
}

/**
 * An envelope to write, and what its ack may name: its own id, or for a
 * BATCH envelope each item's id (or, when the batch failed as a whole, the
 * batch's id, which then answers for every item).
 */
export interface OutboundEnvelope {
  envelope: Envelope
  /** the batch's item ids, in order; none for a single envelope */
  items?: MessageId[]
}

/** Decides what to do with inbound envelopes (in order, one result each): the messenger. */
export type EnvelopeHandler = (remotePeer: string, envelopes: Envelope[]) => Promise<AckResult[]>

interface PendingAck {
  resolve: (ack: Ack) => void
  reject: (err: Error) => void
  /** hex id of the batch it was sent in */
  batch?: string
}

/**
 * One long-lived outbound stream to a peer. A window of envelopes is written
 * in one go without waiting (pipelining); acks come back on the same stream,
 * and each resolves the send that wrote its envelope.
 */
class DmChannel {
  private readonly pending = new Map<string, PendingAck>()
  /** hex batch id → hex ids of its items still waiting for an ack */
  private readonly batches = new Map<string, Set<string>>()
  private readonly reader: FrameReader
  private failure: Error | undefined
  private ackTimer: NodeJS.Timeout | undefined

  constructor (
    private readonly stream: Stream,
    private readonly log: Logger,
    private readonly onClosed: (channel: DmChannel) => void
  ) {
    this.reader = new FrameReader(stream, MAX_FRAME_BYTES)
    void this.readAcks()
  }

  get open (): boolean {
    return this.failure == null
  }

  /**
   * Writes every envelope at once. One promise per single envelope and per
   * batch item, in order, each settling with its ack (or the channel's failure).
   */
  sendBatch (outbound: OutboundEnvelope[]): Array<Promise<Ack>> {
    const acks: Array<Promise<Ack>> = []
    const wait = (id: string, batch?: string): void => {
      acks.push(this.failure != null
        ? Promise.reject(this.failure)
        : new Promise<Ack>((resolve, reject) => { this.pending.set(id, { resolve, reject, batch }) }))
    }
    for (const { envelope, items } of outbound) {
      const id = messageIdToHex(envelope.id)
      if (items == null) {
        wait(id)
        continue
      }
      const members = new Set<string>()
      this.batches.set(id, members)
      for (const item of items) {
        const itemId = messageIdToHex(item)
        members.add(itemId)
        wait(itemId, id)
      }
    }
    if (this.failure == null) {
      this.armAckTimer()
      writeFrames(this.stream, outbound.map(({ envelope }) => encodeDmFrame({ envelope })), AbortSignal.timeout(ACK_TIMEOUT))
        .catch((err: unknown) => { this.fail(new OctetError('PEER_UNREACHABLE', `writing to the stream failed: ${errorMessage(err)}`, { cause: err })) })
    }
    return acks
  }

  /** One timer for the whole window: if no ack arrives for ACK_TIMEOUT while some are due, the stream is dead. */
  private armAckTimer (): void {
    if (this.ackTimer != null) return
    this.ackTimer = setTimeout(() => {
      this.ackTimer = undefined
      if (this.pending.size > 0) this.fail(new OctetError('TIMEOUT', `no ack within ${ACK_TIMEOUT} ms`))
    }, ACK_TIMEOUT)
  }

  private async readAcks (): Promise<void> {
    try {
      while (this.failure == null) {
        const frames = await this.reader.nextBatch()
        if (frames.length === 0) throw new OctetError('PEER_UNREACHABLE', 'the peer closed the stream')
        for (const bytes of frames) {
          const frame = decodeDmFrame(bytes)
          if (frame.ack == null) throw new OctetError('MALFORMED_FRAME', 'the peer sent an envelope on our outbound stream')
          this.settle(frame.ack)
        }
        // progress: restart the dead-stream timer
        clearTimeout(this.ackTimer)
        this.ackTimer = undefined
        if (this.pending.size > 0) this.armAckTimer()
      }
    } catch (err) {
      this.fail(isOctetError(err) ? err : new OctetError('PEER_UNREACHABLE', `the stream closed: ${errorMessage(err)}`, { cause: err }))
    }
  }

  /** An ack names one envelope, one batch item, or a whole batch (which then answers for its items). */
  private settle (ack: Ack): void {
    const id = messageIdToHex(ack.id)
    const members = this.batches.get(id)
    if (members != null) {
      this.batches.delete(id)
      for (const member of members) {
        this.pending.get(member)?.resolve(ack)
        this.pending.delete(member)
      }
      return
    }
    const pending = this.pending.get(id)
    if (pending == null) throw new OctetError('MALFORMED_FRAME', `ack for an envelope we did not send (${id})`)
    this.pending.delete(id)
    if (pending.batch != null) {
      const batch = this.batches.get(pending.batch)
      batch?.delete(id)
      if (batch?.size === 0) this.batches.delete(pending.batch)
    }
    pending.resolve(ack)
  }

  fail (err: Error): void {
    if (this.failure != null) return
    this.failure = err
    clearTimeout(this.ackTimer)
    for (const pending of this.pending.values()) pending.reject(err)
    this.pending.clear()
    this.batches.clear()
    this.reader.dispose()
    this.stream.abort(err)
    this.log.debug({ err: errorMessage(err) }, 'dm channel closed')
    this.onClosed(this)
  }

  async close (): Promise<void> {
    if (this.failure != null) return
    this.failure = new OctetError('UNAVAILABLE', 'the channel was closed')
    clearTimeout(this.ackTimer)
    for (const pending of this.pending.values()) pending.reject(this.failure)
    this.pending.clear()
    this.batches.clear()
    this.reader.dispose()
    await this.stream.close({ signal: AbortSignal.timeout(STREAM_CLOSE_TIMEOUT) }).catch(() => { this.stream.abort(new OctetError('TIMEOUT', 'close timed out')) })
    this.onClosed(this)
  }
}

export interface DmTransportInit {
  libp2p: OctetLibp2p
  log: Logger
  refusals: Refusals
  onEnvelopes: EnvelopeHandler
  /** an inbound stream with no frame for this long is ended (default INBOUND_IDLE_TIMEOUT; short in tests) */
  idleTimeout?: number
}

/**
 * `/octet/dm/1.0.0`: one outbound stream per peer for our envelopes, and a
 * handler that answers every inbound envelope with an ack on its stream.
 */
export class DmTransport {
  private readonly channels = new Map<string, DmChannel>()
  private readonly opening = new Map<string, Promise<DmChannel>>()
  private readonly inbound = new Set<Stream>()
  private started = false

  constructor (private readonly init: DmTransportInit) {}

  async start (): Promise<void> {
    if (this.started) return
    await this.init.libp2p.handle(DM_PROTOCOL, (stream, connection) => { void this.handleInbound(stream, connection) }, {
      maxInboundStreams: MAX_INBOUND_DM_STREAMS,
      ...RELAYED_CONNECTIONS_OK
    })
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.init.libp2p.unhandle(DM_PROTOCOL)
    await Promise.all([...this.channels.values()].map(async c => { await c.close() }))
    for (const stream of this.inbound) stream.abort(new Error('shutting down'))
  }

  /**
   * Writes envelopes on the peer's channel (opened, through a DHT lookup if
   * need be, on first use); each promise settles with the ack of one envelope
   * or batch item (see DmChannel.sendBatch). An abort of `signal` rejects the
   * acks still awaited at once (the channel, shared, stays open for others).
   */
  async sendBatch (peer: string, outbound: OutboundEnvelope[], signal?: AbortSignal): Promise<Array<Promise<Ack>>> {
    const channel = await this.channel(peer, signal)
    const acks = channel.sendBatch(outbound)
    return signal == null ? acks : abortable(acks, signal)
  }

  private async channel (peer: string, signal?: AbortSignal): Promise<DmChannel> {
    const existing = this.channels.get(peer)
    if (existing?.open === true) return existing
    let opening = this.opening.get(peer)
    if (opening == null) {
      opening = this.openChannel(peer, signal).finally(() => this.opening.delete(peer))
      this.opening.set(peer, opening)
    }
    return await opening
  }

  private async openChannel (peer: string, signal?: AbortSignal): Promise<DmChannel> {
    const timeout = AbortSignal.timeout(DIAL_TIMEOUT)
    let stream: Stream
    try {
      stream = await dialProtocolFindingPeer(this.init.libp2p, parsePeerId(peer), DM_PROTOCOL, signal == null ? timeout : AbortSignal.any([signal, timeout]))
    } catch (err) {
      throw new OctetError('PEER_UNREACHABLE', `cannot reach ${peer}: ${errorMessage(err)}`, { cause: err })
    }
    const channel = new DmChannel(stream, this.init.log.child({ peer }), closed => {
      if (this.channels.get(peer) === closed) this.channels.delete(peer)
    })
    this.channels.set(peer, channel)
    return channel
  }

  /**
   * Reads whatever frames have arrived, lets the messenger take them as one
   * batch (one database write), then answers each with its ack.
   */
  private async handleInbound (stream: Stream, connection: Connection): Promise<void> {
    const remotePeer = connection.remotePeer.toString()
    const { refusals } = this.init
    const reader = new FrameReader(stream, MAX_FRAME_BYTES)
    this.inbound.add(stream)
    try {
      while (true) {
        const frames = await reader.nextBatch(AbortSignal.timeout(this.init.idleTimeout ?? INBOUND_IDLE_TIMEOUT)).catch((err: unknown) => {
          // an idle peer is closed quietly; it opens a new stream when it has something to say
          if (isOctetError(err)) throw err
          if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return []
          throw err
        })
        if (frames.length === 0) break
        const envelopes = frames.map(bytes => {
          const frame = decodeDmFrame(bytes)
          if (frame.envelope == null) throw new OctetError('MALFORMED_FRAME', 'an ack arrived on an inbound stream')
          return frame.envelope
        })
        const results = await this.init.onEnvelopes(remotePeer, envelopes).catch((err: unknown) => {
          if (!isOctetError(err, 'DISK_FULL')) throw err
          // nothing of them was kept: "try again later", so the sender keeps them in its outbox
          refusals.refuse({ counter: 'dm.deferred.DISK_FULL', by: envelopes.length, peer: remotePeer, level: 'info', message: 'asked the sender to retry later: the disk is full' })
          return envelopes.map((): AckResult => ({ status: AckStatus.RATE_LIMITED, reason: DISK_FULL_REASON }))
        })
        const acks = envelopes.flatMap((envelope, i) => {
          const result = results[i] ?? { status: AckStatus.REJECTED }
          const answers = result.items ?? [{ id: envelope.id, status: result.status, reason: result.reason }]
          return answers.map(answer => encodeDmFrame({ ack: { id: answer.id, status: answer.status, reason: answer.reason ?? '' } }))
        })
        await writeFrames(stream, acks, AbortSignal.timeout(ACK_TIMEOUT))
      }
      // a peer that does not close its side in turn would hold the stream half-open for ever,
      // one of its MAX_INBOUND_DM_STREAMS: it is reset instead
      const closing = AbortSignal.timeout(STREAM_CLOSE_TIMEOUT)
      // close() ends our side only; the stream is gone once the peer ends its side too
      await stream.close({ signal: closing }).then(async () => { await untilClosed(stream, closing) }).catch((err: unknown) => {
        refusals.refuse({ counter: 'dm.reset.close-timeout', peer: remotePeer, level: 'info', message: 'reset a DM stream whose peer did not close its side' })
        stream.abort(new OctetError('TIMEOUT', `the peer did not close the stream within ${STREAM_CLOSE_TIMEOUT} ms: ${errorMessage(err)}`))
      })
    } catch (err) {
      const code = isOctetError(err) ? err.code : 'STREAM_ERROR'
      refusals.refuse({ counter: `dm.rejected.${code}`, peer: remotePeer, fields: { peer: remotePeer, code, err: errorMessage(err) }, message: 'closed a bad inbound dm stream' })
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      reader.dispose()
      this.inbound.delete(stream)
    }
  }
}
