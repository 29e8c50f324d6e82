import type { ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { Counters, EventLog, OctetEvent } from '../../messaging/index.js'

const HEARTBEAT_INTERVAL = 15_000

/**
 * `GET /v1/events`: Server-Sent Events. Each event carries its id; a client
 * that reconnects with Last-Event-ID (or ?after=) gets every later event from
 * the log first, then live ones, with nothing skipped or repeated.
 */
export async function eventRoutes (app: FastifyInstance, { events, counters }: { events: EventLog, counters: Counters }): Promise<void> {
  // an event stream never ends by itself: without this, closing the server would wait for
  // every connected client to hang up (a daemon with a bridge attached could not stop)
  const streams = new Map<ServerResponse, () => void>()
  app.addHook('preClose', async () => {
    for (const [res, stop] of streams) {
      stop()
      res.end()
    }
  })

  app.get<{ Querystring: { after?: number }, Headers: { 'last-event-id'?: string } }>('/v1/events', {
    schema: {
      summary: 'Live event stream (text/event-stream); resumes after Last-Event-ID',
      tags: ['events'],
      headers: { type: 'object', properties: { 'last-event-id': { type: 'string', pattern: '^[0-9]{1,15}$' } } },
      querystring: { type: 'object', properties: { after: { type: 'integer', minimum: 0 } } }
    }
  }, async (request, reply) => {
    const header = request.headers['last-event-id']
    let lastSent = header != null ? Number(header) : request.query.after ?? events.latestId
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    const write = (event: OctetEvent): void => {
      if (event.id <= lastSent || res.writableEnded || res.destroyed) return
      lastSent = event.id
      res.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)
    }
    // subscribe before reading the log: what commits meanwhile is buffered, not lost
    let buffer: OctetEvent[] | undefined = []
    const unsubscribe = events.subscribe(event => { if (buffer != null) buffer.push(event); else write(event) })
    const heartbeat = setInterval(() => { res.write(': keep-alive\n\n') }, HEARTBEAT_INTERVAL)
    const stop = (): void => {
      streams.delete(res)
      unsubscribe()
      clearInterval(heartbeat)
    }
    streams.set(res, stop)
    res.once('close', stop)
    counters.increment('api.sse.connections')
    res.write(': octet events\n\n')
    for await (const event of events.since(lastSent)) {
      if (res.destroyed || res.writableEnded) return
      write(event)
    }
    for (const event of buffer) write(event)
    buffer = undefined
  })

  app.get('/v1/stats', {
    schema: {
      summary: 'Counters (delivered, retried, refused envelopes by reason, …) and memory use',
      tags: ['node'],
      response: {
        200: {
          type: 'object',
          required: ['counters', 'memory'],
          properties: {
            counters: { type: 'object', additionalProperties: { type: 'number' } },
            memory: {
              type: 'object',
              description: 'bytes, from process.memoryUsage()',
              properties: { rss: { type: 'number' }, heapTotal: { type: 'number' }, heapUsed: { type: 'number' }, external: { type: 'number' }, arrayBuffers: { type: 'number' } }
            }
          }
        }
      }
    }
  }, async () => ({ counters: counters.snapshot(), memory: process.memoryUsage() }))
}
