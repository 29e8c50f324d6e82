import { ok, type ApiEvent, type OctetClient } from '../client/index.js'
import { OctetError } from '../errors.js'

export interface SseMessage {
  id?: string
  event?: string
  data: string
}

/**
 * Parses a text/event-stream body into messages (the subset octet sends:
 * id, event, data lines; comments ignored).
 */
export async function * parseSse (body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder()
  let buffer = ''
  let current: SseMessage = { data: '' }
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true })
    let newline: number
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '')
      buffer = buffer.slice(newline + 1)
      if (line === '') {
        if (current.data !== '' || current.id != null) yield current
        current = { data: '' }
        continue
      }
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'id') current.id = value
      else if (field === 'event') current.event = value
      else if (field === 'data') current.data = current.data === '' ? value : `${current.data}\n${value}`
    }
  }
}

/**
 * Opens the daemon's event stream (no timeout: `signal` ends it). Opened before what the
 * caller reads next, so that nothing happening meanwhile is missed.
 */
export async function openEventStream (client: OctetClient, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
  const body = ok(await client.GET('/v1/events', { parseAs: 'stream', signal, headers: { accept: 'text/event-stream' } }))
  if (body == null) throw new OctetError('API_ERROR', 'the event stream answered without a body')
  return body
}

/**
 * The events of an open stream. The document types the stream only as text/event-stream:
 * each `data` line is an event as the daemon stores it (messaging/events.ts), the one
 * type the CLI takes from the daemon's source rather than from the document.
 */
export async function * events (body: ReadableStream<Uint8Array>): AsyncGenerator<ApiEvent> {
  for await (const sse of parseSse(body)) yield JSON.parse(sse.data) as ApiEvent
}
