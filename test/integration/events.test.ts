import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MessageRecord } from '../../src/messaging/index.js'
import { Cleanup, DaemonProcess, waitFor } from '../helpers/daemon.js'

interface SseEvent {
  id: number
  type: string
  data: { id: number, type: string, at: number, data: Record<string, any> }
}

/**
 * A minimal Server-Sent Events client on fetch: parses `id:`, `event:` and
 * `data:` fields of each block, skips comments (`: keep-alive`), and hands
 * the events out in arrival order through `next()`.
 */
class SseClient {
  private readonly queue: SseEvent[] = []
  private wake: (() => void) | undefined
  private ended = false
  private failure: unknown

  private constructor (readonly response: Response, private readonly controller: AbortController) {}

  static async open (url: string, headers: Record<string, string>, cleanup: Cleanup): Promise<SseClient> {
    const controller = new AbortController()
    const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal })
    const client = new SseClient(response, controller)
    // an open stream keeps the daemon's HTTP server from closing: cut it first
    cleanup.add(async () => { client.close() })
    if (response.ok && response.body != null) void client.pump(response.body)
    return client
  }

  private async pump (body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      while (true) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          this.parseBlock(buffer.slice(0, end))
          buffer = buffer.slice(end + 2)
        }
      }
    } catch (err) {
      if (!this.controller.signal.aborted) this.failure = err
    } finally {
      this.ended = true
      this.wake?.()
    }
  }

  private parseBlock (block: string): void {
    let id: string | undefined
    let type = 'message'
    const data: string[] = []
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      let value = colon < 0 ? '' : line.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
      if (field === 'id') id = value
      else if (field === 'event') type = value
      else if (field === 'data') data.push(value)
    }
    // a block of comments only (the greeting, heartbeats) is no event
    if (data.length === 0) return
    this.queue.push({ id: Number(id), type, data: JSON.parse(data.join('\n')) })
    this.wake?.()
  }

  /** The next event in arrival order; fails when none comes within `timeoutMs` or the stream ends. */
  async next (timeoutMs = 20_000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs
    while (this.queue.length === 0) {
      if (this.ended) throw new Error(`the event stream ended${this.failure != null ? `: ${String(this.failure)}` : ''}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no event within ${timeoutMs} ms`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.wake = () => { clearTimeout(timer); resolve() }
      })
      this.wake = undefined
    }
    return this.queue.shift()!
  }

  async take (count: number): Promise<SseEvent[]> {
    const events: SseEvent[] = []
    while (events.length < count) events.push(await this.next())
    return events
  }

  /** Events that arrived and were not taken yet. */
  get pending (): number {
    return this.queue.length
  }

  close (): void {
    this.controller.abort()
  }
}

/**
 * GET /v1/events over real HTTP: C's event stream while A writes to it; a
 * disconnected client resumes with Last-Event-ID and misses nothing, repeats
 * nothing. A and C are `octet daemon` processes (C bootstraps from A): the
 * test is about the daemon's API as a bridge reaches it, and about its stop.
 */
describe('the SSE event stream resumes without loss', () => {
  const cleanup = new Cleanup()
  let a: DaemonProcess
  let c: DaemonProcess
  /** the id of the last event C's stream has shown (tests run in order) */
  let lastSeen = 0

  beforeAll(async () => {
    a = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    c = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [a.tcpAddress] }, cleanup)
  })
  afterAll(async () => { await cleanup.run() })

  const eventsUrl = (node: DaemonProcess, query = ''): string => `${node.info.apiUrl}/v1/events${query}`
  const auth = (node: DaemonProcess): Record<string, string> => ({ authorization: `Bearer ${node.token}` })
  const send = async (text: string): Promise<MessageRecord> => {
    const { status, body } = await a.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: c.peerId, text })
    expect(status).toBe(202)
    return body.message
  }
  const receivedText = (event: SseEvent): unknown => event.data.data.message?.text
  const expectConsecutive = (events: SseEvent[], after: number): void => {
    expect(events.map(e => e.id)).toEqual(events.map((_, i) => after + i + 1))
    // the id line and the event's own id agree, and so do the event line and its type
    for (const event of events) {
      expect(event.data.id).toBe(event.id)
      expect(event.data.type).toBe(event.type)
    }
  }

  it('a client that reconnects with Last-Event-ID gets exactly what it missed, in order, then live events', async () => {
    const first = await SseClient.open(eventsUrl(c), auth(c), cleanup)
    expect(first.response.status).toBe(200)
    expect(first.response.headers.get('content-type')).toMatch(/^text\/event-stream/)

    const before = ['one', 'two', 'three']
    for (const text of before) await send(`live ${text}`)
    // a stranger's first message is announced as a contact request, then the messages
    const opening = await first.take(4)
    expect(opening.map(e => e.type)).toEqual(['contact.request', 'message.received', 'message.received', 'message.received'])
    expect(opening[0]?.data.data.peerId).toBe(a.peerId)
    expect(opening.slice(1).map(receivedText)).toEqual(before.map(t => `live ${t}`))
    // C had no events before: a stream opened without Last-Event-ID starts with the first one
    expectConsecutive(opening, 0)
    const lastId = opening.at(-1)!.id
    first.close()

    // four more while nobody listens; C stores them (and their events) all the same
    const missed = ['four', 'five', 'six', 'seven'].map(t => `while away ${t}`)
    const missedIds: string[] = []
    for (const text of missed) missedIds.push((await send(text)).id)
    await waitFor(async () => {
      const { body } = await c.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${a.peerId}/messages?limit=10`)
      return body.messages.at(-1)?.id === missedIds.at(-1) ? true : undefined
    }, { what: 'the missed messages at C' })

    const resumed = await SseClient.open(eventsUrl(c), { ...auth(c), 'last-event-id': String(lastId) }, cleanup)
    expect(resumed.response.status).toBe(200)
    const replayed = await resumed.take(4)
    expectConsecutive(replayed, lastId)
    expect(replayed.map(e => e.type)).toEqual(Array(4).fill('message.received'))
    expect(replayed.map(receivedText)).toEqual(missed)
    expect(replayed.map(e => e.data.data.message.id)).toEqual(missedIds)

    // the same connection carries on live: the next event is the very next id, so nothing
    // else was slipped in between the replay and the live part
    await send('live again')
    const live = await resumed.next()
    expect(live.id).toBe(lastId + 5)
    expect(live.type).toBe('message.received')
    expect(receivedText(live)).toBe('live again')
    expect(resumed.pending).toBe(0)
    lastSeen = live.id
    resumed.close()
  })

  it('?after=0 replays the whole log from the first event', async () => {
    expect(lastSeen).toBeGreaterThan(0)
    const replay = await SseClient.open(eventsUrl(c, '?after=0'), auth(c), cleanup)
    expect(replay.response.status).toBe(200)
    const all = await replay.take(lastSeen)
    expectConsecutive(all, 0)
    expect(all[0]?.type).toBe('contact.request')
    expect(all.slice(1).map(receivedText)).toEqual([
      'live one', 'live two', 'live three',
      'while away four', 'while away five', 'while away six', 'while away seven',
      'live again'
    ])
    replay.close()
  })

  it('refuses an invalid Last-Event-ID with 400 and a missing token with 401', async () => {
    const bad = await fetch(eventsUrl(c), { headers: { ...auth(c), 'last-event-id': 'abc' }, signal: AbortSignal.timeout(10_000) })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST')

    const anonymous = await fetch(eventsUrl(c), { signal: AbortSignal.timeout(10_000) })
    expect(anonymous.status).toBe(401)
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED')

    const wrongToken = await fetch(eventsUrl(c), { headers: { authorization: 'Bearer not-the-token' }, signal: AbortSignal.timeout(10_000) })
    expect(wrongToken.status).toBe(401)
  })

  // the last test: C goes
  it('stopping the daemon ends open event streams instead of waiting for the clients to hang up', async () => {
    const open = await SseClient.open(eventsUrl(c), auth(c), cleanup)
    expect(open.response.status).toBe(200)
    // the client stays connected; SIGTERM must not wait for it: a clean exit (0), well before
    // the helper's SIGKILL at 10 s
    const started = Date.now()
    expect(await c.stop()).toBe(0)
    expect(Date.now() - started).toBeLessThan(8_000)
    await expect(open.next()).rejects.toThrow(/ended/)
  })
})
