// The page reads the event stream with fetch rather than EventSource: EventSource hides the
// daemon's keep-alive comments, so a stream that stalls while its connection stays open (a
// frozen daemon, a laptop that slept, a hung proxy) would look live for ever. Here any bytes
// at all, comments included, prove the stream alive, and silence for a few heartbeats ends it.

import { SseParser, type SseEvent } from '../../src/client/sse.js'

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
