import { ok, readSse, type ApiEvent, type OctetClient } from '../client/index.js'
import { OctetError } from '../errors.js'

/**
 * Opens the daemon's event stream (no timeout: `signal` ends it). Opened before what the
 * caller reads next, so that nothing happening meanwhile is missed.
 */
export async function openEventStream (client: OctetClient, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
  const body = ok(await client.GET('/v1/events', { parseAs: 'stream', signal, headers: { accept: 'text/event-stream' } }))
  if (body == null) throw new OctetError('API_ERROR', 'the event stream answered without a body')
  return body
}

/** The events of an open stream: each `data` line is an Event of the OpenAPI document. */
export async function * events (body: ReadableStream<Uint8Array>): AsyncGenerator<ApiEvent> {
  for await (const sse of readSse(body)) yield JSON.parse(sse.data) as ApiEvent
}
