/**
 * Server-Sent Events, read the one way for every client of the daemon: the CLI, the IRC
 * bridge (through `octet/client`) and the web page (which bundles this module: it must stay
 * free of Node-only imports).
 */

/** One event of a text/event-stream: its `event:` name (default `message`), `data:` lines joined, last `id:`. */
export interface SseEvent {
  event: string
  data: string
  id?: string
}

/**
 * Server-Sent Events parsing (the WHATWG "event stream interpretation"): `event`, `data`,
 * `id` fields and comments; lines end with CR, LF or CRLF, and text may be split anywhere
 * between chunks, a CRLF included. `retry` is ignored: reconnecting is the caller's.
 */
export class SseParser {
  private buffer = ''
  /** the last chunk ended with CR: an LF opening the next one ends no further line */
  private afterCR = false
  private event = ''
  private data: string[] = []
  private id: string | undefined

  constructor (private readonly onEvent: (event: SseEvent) => void, private readonly onComment: (text: string) => void = () => {}) {}

  /** Text as it comes (decoded with a streaming TextDecoder, which also drops a leading BOM). */
  push (chunk: string): void {
    let text = this.buffer + chunk
    if (this.afterCR && text.startsWith('\n')) text = text.slice(1)
    this.afterCR = false
    let start = 0
    for (;;) {
      const cr = text.indexOf('\r', start)
      const lf = text.indexOf('\n', start)
      if (cr < 0 && lf < 0) break
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf)
      this.line(text.slice(start, end))
      start = end + 1
      if (text[end] === '\r') {
        if (start === text.length) this.afterCR = true
        else if (text[start] === '\n') start++
      }
    }
    this.buffer = text.slice(start)
  }

  private line (line: string): void {
    if (line === '') {
      // a blank line dispatches; an event without data is none (as EventSource does)
      if (this.data.length > 0) this.onEvent({ event: this.event === '' ? 'message' : this.event, data: this.data.join('\n'), ...(this.id != null ? { id: this.id } : {}) })
      this.event = ''
      this.data = []
      return
    }
    if (line.startsWith(':')) {
      this.onComment(line.slice(1).replace(/^ /, ''))
      return
    }
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    switch (field) {
      case 'event': this.event = value; break
      case 'data': this.data.push(value); break
      case 'id': if (!value.includes('\0')) this.id = value; break
      default: break
    }
  }
}

/** A stream that brought nothing, not even the daemon's keep-alive comment, for the idle time. */
export class SseIdleError extends Error {
  readonly code = 'SSE_IDLE'
  override readonly name = 'SseIdleError'
}

/**
 * The events of a text/event-stream body. With `idleMs`, a body that brings nothing at all
 * (comments count: the daemon writes one every heartbeat) for that long is a dead
 * connection: the read ends with SseIdleError and the caller reconnects. A consumer that
 * stops early, or a failed read, lets go of the body.
 */
export async function * readSse (body: ReadableStream<Uint8Array>, idleMs?: number): AsyncGenerator<SseEvent> {
  const reader = body.getReader()
  // streaming: a character cut between chunks is decoded once whole
  const decoder = new TextDecoder()
  const ready: SseEvent[] = []
  const parser = new SseParser(event => { ready.push(event) })
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const idle = idleMs == null
        ? undefined
        : new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new SseIdleError(`no data for ${idleMs} ms`)) }, idleMs) })
      const chunk = await (idle == null ? reader.read() : Promise.race([reader.read(), idle])).finally(() => { clearTimeout(timer) })
      if (chunk.done) return
      parser.push(decoder.decode(chunk.value, { stream: true }))
      while (ready.length > 0) yield ready.shift() as SseEvent
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
}
