import type { OctetEvent } from '../../src/messaging/index.js'

/**
 * Reads a daemon's /v1/events stream (Server-Sent Events) from `after` and
 * hands each event's data (the stored event: id, type, at, data) to `take`,
 * in the order the stream sends them, until `take` returns true or
 * `timeoutMs` passes (then it rejects, saying how many came).
 */
export async function readEvents (apiUrl: string, token: string, after: number, take: (event: OctetEvent) => boolean, timeoutMs: number): Promise<void> {
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort(new Error(`no end of the event stream in ${timeoutMs} ms`)) }, timeoutMs)
  let count = 0
  try {
    const response = await fetch(`${apiUrl}/v1/events?after=${after}`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` }, signal: controller.signal })
    if (!response.ok || response.body == null) throw new Error(`GET /v1/events answered ${response.status}`)
    const reader = response.body.getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    while (true) {
      const { value, done } = await reader.read()
      if (done) throw new Error('the event stream ended')
      buffer += decoder.decode(value, { stream: true })
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer.slice(0, end).split('\n').filter(l => l.startsWith('data:')).map(l => l.slice(5).trimStart())
        buffer = buffer.slice(end + 2)
        // a block of comments (the greeting, heartbeats) is no event
        if (data.length === 0) continue
        count++
        if (take(JSON.parse(data.join('\n')) as OctetEvent)) return
      }
    }
  } catch (err) {
    throw new Error(`reading events after ${after}: ${count} read: ${String(err)}`)
  } finally {
    clearTimeout(timer)
    controller.abort()
  }
}
