import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { Cleanup, until, waitFor } from '../helpers/daemon.js'
import { InProcessDaemon } from '../helpers/inproc.js'
import { DAY } from '../../src/units.js'

// In-process (test/helpers/inproc.ts), not `octet daemon` processes: the test needs knobs a
// process does not offer — SSE bounds small enough to reach in seconds (overrides.sse) and
// events committed straight into the log (24 MB of them at once, and some eight days old).

// Event streams that cannot hurt the daemon: a client that stops reading costs a bounded
// amount of memory and is let go with the id to resume after; events older than the
// retention are pruned, and asking for them says so.
const cleanup = new Cleanup()
afterEach(async () => { await cleanup.run() })

interface Block { id?: number, event?: string, data?: any }

/** An event stream read over a raw socket, so that a test decides when (and whether) it reads. */
class RawStream {
  text = ''
  ended = false
  private constructor (readonly socket: Socket) {
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { this.text += chunk })
    socket.on('close', () => { this.ended = true })
    socket.on('error', () => {})
  }

  static async open (daemon: InProcessDaemon, headers: Record<string, string> = {}): Promise<RawStream> {
    const port = Number(new URL(daemon.daemon.info().apiUrl).port)
    const socket = connect(port, '127.0.0.1')
    const stream = new RawStream(socket)
    cleanup.add(async () => { socket.destroy() })
    const lines = ['GET /v1/events HTTP/1.1', 'host: localhost', `authorization: Bearer ${daemon.token}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
    socket.write(`${lines.join('\r\n')}\r\n\r\n`)
    await until('the stream to open', () => stream.text.includes(': octet events'))
    return stream
  }

  /** The stream's body: after the HTTP head, out of its chunked transfer encoding. */
  get body (): string {
    let rest = this.text.slice(this.text.indexOf('\r\n\r\n') + 4)
    let body = ''
    while (true) {
      const end = rest.indexOf('\r\n')
      if (end < 0) return body
      const size = parseInt(rest.slice(0, end), 16)
      if (size === 0 || rest.length < end + 2 + size) return body
      body += rest.slice(end + 2, end + 2 + size)
      rest = rest.slice(end + 2 + size + 2)
    }
  }

  /** The stream's blocks, comments left out. */
  get blocks (): Block[] {
    return this.body.split('\n\n').flatMap(raw => {
      const block: Block = {}
      for (const line of raw.split('\n')) {
        const [field, ...rest] = line.split(': ')
        const value = rest.join(': ')
        if (field === 'id') block.id = Number(value)
        else if (field === 'event') block.event = value
        else if (field === 'data') block.data = JSON.parse(value)
      }
      return block.event != null ? [block] : []
    })
  }

  get ids (): number[] {
    return this.blocks.flatMap(b => b.id != null ? [b.id] : [])
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('an event stream client that stops reading', () => {
  it('is held to a bounded backlog, let go with the id to resume after, and misses nothing when it resumes', async () => {
    const daemon = await InProcessDaemon.start({
      dataDir: await cleanup.tempDir(),
      overrides: { sse: { maxBufferedBytes: 64 * 1024, stallTimeout: 1000, closeGrace: 20_000 } }
    }, cleanup)
    const { events } = daemon.messenger
    const first = events.latestId + 1
    const reader = await RawStream.open(daemon)
    const sleeper = await RawStream.open(daemon)
    // stops reading: the kernel's buffers fill, then the daemon's
    sleeper.socket.pause()

    // 24 MB of 32 KiB events: more than the kernel's buffers on loopback hold (a few MB each
    // way), so the rest waits on the daemon, which gives up on the sleeper a second later
    const pad = 'x'.repeat(32 * 1024)
    for (let i = 0; i < 15; i++) {
      await Promise.all(Array.from({ length: 50 }, async (_, k) => await events.commit([], [{ type: 'identity.changed', data: { peerId: `filler ${i * 50 + k} ${pad}` } }])))
    }
    const slow = async (): Promise<number | undefined> => (await daemon.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters['api.sse.slow-disconnects']
    expect(await waitFor(slow, { what: 'the sleeper to be let go', timeoutMs: 15_000 })).toBe(1)
    const last = events.latestId
    // a few more while it is gone
    for (let k = 0; k < 5; k++) await events.commit([], [{ type: 'identity.changed', data: { peerId: `late ${k}` } }])

    // the sleeper wakes up and reads what was queued for it: events in order, then the goodbye
    sleeper.socket.resume()
    await until('the sleeper to be disconnected', () => sleeper.ended, 15_000)
    const goodbye = sleeper.blocks.at(-1)
    expect(goodbye?.event).toBe('stream.closed')
    expect(goodbye?.data).toMatchObject({ reason: 'SLOW_CLIENT' })
    const got = sleeper.ids
    expect(got).toEqual(range(first, goodbye?.data.resumeAfter))
    // the daemon stopped queueing for it long before the end
    expect(got.length).toBeLessThan(last - first + 1)

    // resuming where it was told gets every later event exactly once
    const resumed = await RawStream.open(daemon, { 'last-event-id': String(goodbye?.data.resumeAfter) })
    await until('the resumed stream to catch up', () => resumed.ids.at(-1) === events.latestId, 15_000)
    expect(resumed.ids).toEqual(range(goodbye?.data.resumeAfter + 1, events.latestId))

    // the client that kept reading got everything, and was never disconnected
    await until('the reader to get every event', () => reader.ids.at(-1) === events.latestId, 15_000)
    expect(reader.ids).toEqual(range(first, events.latestId))
    expect(reader.ended).toBe(false)
  }, 120_000)
})

describe('the heartbeat of an idle stream', () => {
  it('announces its heartbeat interval (X-Octet-Heartbeat-Ms) and keeps an idle stream to it', async () => {
    const daemon = await InProcessDaemon.start({ dataDir: await cleanup.tempDir(), overrides: { sse: { heartbeatInterval: 200 } } }, cleanup)
    const stream = await RawStream.open(daemon)
    expect(stream.text.slice(0, stream.text.indexOf('\r\n\r\n'))).toMatch(/\r\nx-octet-heartbeat-ms: 200\r\n/i)
    const opened = Date.now()
    await until('three heartbeats', () => stream.body.split(': keep-alive\n\n').length > 3)
    // three intervals, not the default 15 s
    expect(Date.now() - opened).toBeLessThan(5000)
  })
})

describe('retention of the event log', () => {
  it('prunes events past the retention at start; a replay from a pruned id is answered 410 EVENTS_PRUNED, a replay from a kept one goes on', async () => {
    const dataDir = await cleanup.tempDir()
    let daemon = await InProcessDaemon.start({ dataDir }, cleanup)
    const eightDaysAgo = Date.now() - 8 * DAY
    const old = await daemon.messenger.events.commit([], [1, 2, 3].map(n => ({ type: 'identity.changed' as const, data: { peerId: `old ${n}` } })), eightDaysAgo)
    const young = await daemon.messenger.events.commit([], [1, 2].map(n => ({ type: 'identity.changed' as const, data: { peerId: `young ${n}` } })))
    const lastOld = old.at(-1)?.id ?? 0
    daemon = await daemon.restart(cleanup)
    await waitFor(async () => (await daemon.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters['retention.events.pruned'], { what: 'the pruning at start' })
    expect((await daemon.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters['retention.events.pruned']).toBeGreaterThanOrEqual(old.length)

    for (const from of [0, old[0]?.id ?? 0, lastOld - 1]) {
      const refused = await daemon.api<{ error: { code: string, message: string } }>('GET', '/v1/events', undefined, { 'last-event-id': String(from) })
      expect(refused.status).toBe(410)
      expect(refused.body.error.code).toBe('EVENTS_PRUNED')
      expect(refused.body.error.message).toContain(`?after=${lastOld}`)
    }
    const kept = await RawStream.open(daemon, { 'last-event-id': String(lastOld) })
    await until('the kept events', () => kept.ids.at(-1) === young.at(-1)?.id)
    expect(kept.ids).toEqual(young.map(e => e.id))
    // ids go on from the newest, across the restart and the pruning
    const next = await daemon.messenger.events.commit([], [{ type: 'identity.changed', data: { peerId: 'next' } }])
    expect(next[0]?.id).toBe((young.at(-1)?.id ?? 0) + 1)
  }, 60_000)
})
