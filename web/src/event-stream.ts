// The page reads the event stream with fetch rather than EventSource: EventSource hides the
// daemon's keep-alive comments, so a stream that stalls while its connection stays open (a
// frozen daemon, a laptop that slept, a hung proxy) would look live for ever. Here any bytes
// at all, comments included, prove the stream alive, and silence for a few heartbeats ends it.

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

/** The response header in which the daemon announces its heartbeat interval (ms). */
const HEARTBEAT_HEADER = 'x-octet-heartbeat-ms'
/** Silence for this many heartbeats ends the stream: one late comment is no stall. */
const STALL_HEARTBEATS = 3
/** Without the header (or before the answer comes): the daemon's default 15 s heartbeat, three times. */
const FALLBACK_STALL = 45_000

export interface StreamHandlers {
  onOpen: () => void
  onEvent: (event: SseEvent) => void
  /** The stream ended: refused (not 200), dropped, ended by the daemon, or silent too long. Called once; it is not reopened here. */
  onDown: () => void
}

/**
 * Reads an event stream of the page's origin (with its cookie) until it ends or `close()` is
 * called. A watchdog ends it when nothing at all arrives for STALL_HEARTBEATS of the interval
 * the daemon announces (FALLBACK_STALL before the answer, or without the header).
 */
export function readEventStream (url: string, handlers: StreamHandlers): () => void {
  const abort = new AbortController()
  let down = false
  let stallAfter = FALLBACK_STALL
  let watchdog: ReturnType<typeof setTimeout> | undefined
  const end = (): void => {
    clearTimeout(watchdog)
    abort.abort()
    if (down) return
    down = true
    handlers.onDown()
  }
  const alive = (): void => {
    clearTimeout(watchdog)
    watchdog = setTimeout(end, stallAfter)
  }

  const read = async (): Promise<void> => {
    alive()
    const res = await fetch(url, { credentials: 'same-origin', headers: { accept: 'text/event-stream' }, signal: abort.signal })
    if (res.status !== 200 || res.body == null) return
    const announced = Number(res.headers.get(HEARTBEAT_HEADER))
    if (Number.isFinite(announced) && announced > 0) stallAfter = STALL_HEARTBEATS * announced
    alive()
    handlers.onOpen()
    const parser = new SseParser(event => { if (!abort.signal.aborted) handlers.onEvent(event) })
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done || abort.signal.aborted) return
      alive()
      parser.push(value)
    }
  }
  // whichever way it ends (an answer other than 200, a dropped connection, the end of the
  // stream, the watchdog's abort), it is down unless the caller closed it
  read().catch(() => {}).finally(end)
  return () => {
    down = true
    end()
  }
}
