import type { ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { OctetError } from '../../errors.js'
import { EVENT_RETENTION, EVENT_RETENTION_COUNT } from '../../messaging/constants.js'
import type { Counters, EventLog, OctetEvent } from '../../messaging/index.js'
import type { SseClientStats } from '../../metrics/index.js'
import { stackFixStatus } from '../../node/stack-fixes.js'
import { DAY, MiB, SECOND } from '../../units.js'
import { eventSchema } from '../event-schemas.js'

/** Stored events read per step when a client catches up. */
const REPLAY_PAGE = 256

/** How far an event stream client may fall behind before it is let go. */
export interface SseLimits {
  /**
   * Bytes written to a client and not yet taken by it, past which nothing more is written:
   * later events wait in the log (on disk), not in memory.
   */
  maxBufferedBytes: number
  /** A client that takes nothing for this long while that much waits is disconnected. */
  stallTimeout: number
  /** After the goodbye, how long it has to take what was queued before the connection is cut. */
  closeGrace: number
  /**
   * How often an idle stream carries a comment. The interval is announced in the
   * X-Octet-Heartbeat-Ms header: a client that hears nothing for a few of them knows the
   * stream stalled (a frozen daemon, a laptop that slept, a hung proxy) even though the
   * connection still looks open.
   */
  heartbeatInterval: number
}

/** The response header announcing SseLimits.heartbeatInterval, in ms. */
export const HEARTBEAT_HEADER = 'x-octet-heartbeat-ms'

/**
 * 1 MiB is a couple of thousand events: a client that reads at all never gets near it. A
 * client that reads nothing costs at most that much memory for 30 s, then nothing.
 */
export const DEFAULT_SSE_LIMITS: SseLimits = { maxBufferedBytes: 1 * MiB, stallTimeout: 30 * SECOND, closeGrace: 10 * SECOND, heartbeatInterval: 15 * SECOND }

/**
 * One client of the event stream. Live events are written as they come while
 * the client keeps up; once more than `maxBufferedBytes` wait for it, writing
 * stops and it catches up from the log as it reads (the same path as a replay
 * after Last-Event-ID). A client that takes nothing for `stallTimeout` gets a
 * `stream.closed` event naming the id to resume after and is disconnected.
 */
class EventStream {
  private live = false
  private closed = false

  constructor (
    private readonly res: ServerResponse,
    private readonly events: EventLog,
    private lastSent: number,
    private readonly limits: SseLimits,
    private readonly onSlow: (resumeAfter: number) => void,
    private readonly onClose: () => void
  ) {}

  /** Events committed and not sent to this client yet. */
  get lagEvents (): number {
    return Math.max(0, this.events.latestId - this.lastSent)
  }

  /** Bytes written to the client that it has not taken yet. */
  get bufferedBytes (): number {
    return this.res.writableLength
  }

  private get behind (): boolean {
    return this.res.writableLength > this.limits.maxBufferedBytes
  }

  private write (event: OctetEvent): void {
    if (event.id <= this.lastSent) return
    this.lastSent = event.id
    this.res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)
  }

  /** An event just committed. */
  onEvent (event: OctetEvent): void {
    if (!this.live || this.closed) return
    this.write(event)
    if (this.behind) {
      this.live = false
      void this.catchUp()
    }
  }

  heartbeat (): void {
    if (!this.behind) this.res.write(': keep-alive\n\n')
  }

  /** Writes stored events after the last one sent, never more than the limit at once, until caught up. */
  async catchUp (): Promise<void> {
    while (!this.closed) {
      if (this.behind) {
        if (!await this.drained()) {
          this.letGo()
          return
        }
        continue
      }
      for await (const event of this.events.since(this.lastSent, REPLAY_PAGE)) {
        if (this.closed) return
        this.write(event)
        if (this.behind) break
      }
      // caught up: later events come through onEvent. None slips in between: the log
      // publishes an event only once it is stored, and this check and the switch run
      // without a pause, so an event is either read above or published after the switch
      if (!this.behind && this.lastSent >= this.events.latestId) {
        this.live = true
        return
      }
    }
  }

  /** True once the client took what was queued; false when it took nothing for stallTimeout or went away. */
  private async drained (): Promise<boolean> {
    return await new Promise<boolean>(resolve => {
      const done = (ok: boolean): void => {
        clearTimeout(timer)
        this.res.off('drain', onDrain)
        this.res.off('close', onGone)
        resolve(ok)
      }
      const onDrain = (): void => { done(true) }
      const onGone = (): void => { done(false) }
      const timer = setTimeout(onGone, this.limits.stallTimeout)
      this.res.on('drain', onDrain)
      this.res.on('close', onGone)
    })
  }

  /** Says goodbye with the id to resume after (Last-Event-ID), then disconnects. */
  private letGo (): void {
    if (this.closed || this.res.destroyed) return
    this.onSlow(this.lastSent)
    const goodbye = { reason: 'SLOW_CLIENT', resumeAfter: this.lastSent, message: `the client read nothing for ${this.limits.stallTimeout / SECOND} s while ${this.res.writableLength} bytes waited; reconnect with Last-Event-ID: ${this.lastSent} to get every later event` }
    // the connection goes with the stream (it would otherwise stay open for another request);
    // a client that never reads never lets the goodbye out either: cut it off after the grace.
    // The socket is taken now: a finished response lets go of it
    const socket = this.res.socket
    this.res.end(`event: stream.closed\ndata: ${JSON.stringify(goodbye)}\n\n`, () => { socket?.end() })
    const cut = setTimeout(() => { socket?.destroy() }, this.limits.closeGrace)
    socket?.once('close', () => { clearTimeout(cut) })
    this.close()
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.onClose()
  }
}

/** The event streams open now; their number and lag are shown by GET /metrics. */
export class SseClients {
  readonly streams = new Map<ServerResponse, EventStream>()

  stats (): SseClientStats {
    let maxLagEvents = 0
    let bufferedBytes = 0
    for (const stream of this.streams.values()) {
      maxLagEvents = Math.max(maxLagEvents, stream.lagEvents)
      bufferedBytes += stream.bufferedBytes
    }
    return { clients: this.streams.size, maxLagEvents, bufferedBytes }
  }
}

/**
 * `GET /v1/events`: Server-Sent Events. Each event carries its id; a client
 * that reconnects with Last-Event-ID (or ?after=) gets every later event from
 * the log first, then live ones, with nothing skipped or repeated. Events
 * older than the retention (messaging/constants.ts) are gone: asking for
 * them is answered 410 EVENTS_PRUNED, not with a silent gap.
 */
export async function eventRoutes (app: FastifyInstance, { events, counters, limits: given, clients = new SseClients() }: { events: EventLog, counters: Counters, limits?: Partial<SseLimits>, clients?: SseClients }): Promise<void> {
  const limits: SseLimits = { ...DEFAULT_SSE_LIMITS, ...given }
  // an event stream never ends by itself: without this, closing the server would wait for
  // every connected client to hang up (a daemon with a bridge attached could not stop)
  const streams = clients.streams
  app.addHook('preClose', async () => {
    for (const [res, stream] of streams) {
      stream.close()
      res.end()
    }
  })

  app.get<{ Querystring: { after?: number }, Headers: { 'last-event-id'?: string } }>('/v1/events', {
    schema: {
      operationId: 'streamEvents', errors: [410], produces: 'text/event-stream', events: eventSchema,
      summary: 'Live event stream (text/event-stream); resumes after Last-Event-ID',
      description: `Events are kept ${EVENT_RETENTION / DAY} days (at most ${EVENT_RETENTION_COUNT} of them): resuming from an older id answers 410 EVENTS_PRUNED. A client that reads nothing for ${DEFAULT_SSE_LIMITS.stallTimeout / SECOND} s while ${DEFAULT_SSE_LIMITS.maxBufferedBytes / MiB} MiB wait for it gets a stream.closed event (data.resumeAfter) and is disconnected. An idle stream carries a comment every heartbeat interval (${DEFAULT_SSE_LIMITS.heartbeatInterval / SECOND} s unless the daemon is configured otherwise: sseHeartbeatMs, OCTET_SSE_HEARTBEAT_MS), announced in ms by the X-Octet-Heartbeat-Ms response header: a client that receives nothing for a few intervals can treat the stream as dropped and resume it with Last-Event-ID.`,
      tags: ['events'],
      responseHeaders: {
        'X-Octet-Heartbeat-Ms': { description: 'The heartbeat interval in ms: an idle stream carries a comment at least this often', schema: { type: 'integer', minimum: 1 } }
      },
      headers: { type: 'object', properties: { 'last-event-id': { type: 'string', pattern: '^[0-9]{1,15}$' } } },
      querystring: { type: 'object', properties: { after: { type: 'integer', minimum: 0 } } }
    }
  }, async (request, reply) => {
    const header = request.headers['last-event-id']
    const after = header != null ? Number(header) : request.query.after ?? events.latestId
    if (after + 1 < events.oldestId) {
      throw new OctetError('EVENTS_PRUNED', `events ${after + 1} to ${events.oldestId - 1} are no longer kept (events are kept ${EVENT_RETENTION / DAY} days, at most ${EVENT_RETENTION_COUNT}); reload state from the API and resume with ?after=${events.oldestId - 1}, or connect without Last-Event-ID for new events only`)
    }
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      [HEARTBEAT_HEADER]: String(limits.heartbeatInterval)
    })
    const stream = new EventStream(res, events, after, limits, resumeAfter => {
      counters.increment('api.sse.slow-disconnects')
      request.log.warn({ resumeAfter }, 'event stream client fell behind and was disconnected')
    }, () => {
      streams.delete(res)
      unsubscribe()
      clearInterval(heartbeat)
    })
    // subscribe before reading the log: an event committed meanwhile is either read from
    // the log or written live (see EventStream.catchUp), never lost
    const unsubscribe = events.subscribe(event => { stream.onEvent(event) })
    const heartbeat = setInterval(() => { stream.heartbeat() }, limits.heartbeatInterval)
    streams.set(res, stream)
    res.once('close', () => { stream.close() })
    counters.increment('api.sse.connections')
    res.write(': octet events\n\n')
    await stream.catchUp()
  })

  app.get('/v1/stats', {
    schema: {
      operationId: 'getStats',
      summary: 'Counters (delivered, retried, refused envelopes by reason, …), memory use, and whether octet\'s fixes to the libp2p stack are active',
      tags: ['node'],
      response: {
        200: {
          type: 'object',
          required: ['counters', 'memory', 'stackFixes'],
          properties: {
            counters: { type: 'object', additionalProperties: { type: 'number' } },
            stackFixes: {
              type: 'array',
              description: "octet's fixes to libp2p packages (src/node/stack-fixes.ts); inactive: the package installed lacks what the fix patches, and runs as upstream wrote it",
              items: {
                type: 'object',
                required: ['fix', 'package', 'version', 'active'],
                properties: { fix: { type: 'string' }, package: { type: 'string' }, version: { type: 'string' }, active: { type: 'boolean' }, reason: { type: 'string' } }
              }
            },
            memory: {
              type: 'object',
              description: 'bytes, from process.memoryUsage()',
              properties: { rss: { type: 'number' }, heapTotal: { type: 'number' }, heapUsed: { type: 'number' }, external: { type: 'number' }, arrayBuffers: { type: 'number' } }
            }
          }
        }
      }
    }
  }, async () => ({ counters: counters.snapshot(), stackFixes: stackFixStatus(), memory: process.memoryUsage() }))
}
