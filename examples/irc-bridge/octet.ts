/**
 * The octet side, through the daemon's public API only (`octet/client`): who we are, the
 * names of the group's members, the event stream from a cursor, and sending to the group
 * with an Idempotency-Key (a retry after a lost answer, or after a daemon restart, makes no
 * second message).
 */
import { createOctetClient, ok, OctetApiError, readSse, type ApiEvent, type ApiFetch, type OctetClient, type operations } from 'octet/client'

/** A group message as the API shows it (GET /v1/groups/:id/messages, and in group.message events). */
export type GroupMessage = operations['listGroupMessages']['responses'][200]['content']['application/json']['messages'][number]

/** Every request but the event stream gets this long. */
const REQUEST_TIMEOUT = 10_000
/** The daemon writes a keep-alive every 15 s: three missed is a dead stream. */
const STREAM_IDLE_TIMEOUT = 45_000
/** Contacts are read again for an unknown author at most this often. */
const NAMES_REFRESH = 30_000

export interface OctetSideInit {
  transport: ApiFetch
  apiName: string
  /** read at each connection, so a token rotated with the data directory is picked up */
  token: () => Promise<string>
  groupId: string
}

export class OctetSide {
  private readonly names = new Map<string, string>()
  private namesReadAt = 0

  constructor (private readonly init: OctetSideInit) {}

  private async client (): Promise<OctetClient> {
    return createOctetClient({ baseUrl: this.init.apiName, token: await this.init.token(), transport: this.init.transport })
  }

  /** The PeerId of the bridge's own node: its messages are never relayed back to IRC. */
  async self (signal: AbortSignal): Promise<string> {
    const client = await this.client()
    return ok(await client.GET('/v1/identity', { signal: timeout(signal) })).peerId
  }

  /** Checks the group exists and we are a member (a wrong --group fails at start, not silently). */
  async checkGroup (signal: AbortSignal): Promise<{ name: string, state: string }> {
    const client = await this.client()
    const { group } = ok(await client.GET('/v1/groups/{id}', { params: { path: { id: this.init.groupId } }, signal: timeout(signal) }))
    return { name: group.name, state: group.state }
  }

  /** The contact name of a PeerId, or a short form of it (its last 8 characters). */
  async nameOf (peerId: string, signal: AbortSignal): Promise<string> {
    if (!this.names.has(peerId) && Date.now() - this.namesReadAt > NAMES_REFRESH) {
      this.namesReadAt = Date.now()
      try {
        const client = await this.client()
        const { contacts } = ok(await client.GET('/v1/contacts', { signal: timeout(signal) }))
        for (const contact of contacts) if (contact.name != null) this.names.set(contact.peerId, contact.name)
      } catch {
        // a name is a nicety: the short PeerId stands in until the contacts can be read
      }
    }
    return this.names.get(peerId) ?? peerId.slice(-8)
  }

  /**
   * Sends `text` to the group under `key`; true when the daemon made the message now,
   * false when it had it already (a retry). Throws OctetApiError for an error answer and
   * TypeError when the daemon cannot be reached.
   */
  async send (text: string, key: string, signal: AbortSignal): Promise<boolean> {
    const client = await this.client()
    const result = await client.POST('/v1/groups/{id}/messages', {
      params: { path: { id: this.init.groupId }, header: { 'idempotency-key': key } },
      body: { text },
      signal: timeout(signal)
    })
    ok(result)
    return result.response.headers.get('idempotent-replayed') !== 'true'
  }

  /**
   * The events after `after` (every later one, replayed from the daemon's log first, then
   * live), or only new ones without a cursor. Ends or throws when the connection does;
   * the caller reconnects from the last event it handled.
   */
  async * events (after: number | undefined, signal: AbortSignal, onOpen: () => void): AsyncGenerator<ApiEvent> {
    const client = await this.client()
    const stream = new AbortController()
    const stop = (): void => { stream.abort(signal.reason) }
    signal.addEventListener('abort', stop)
    // the answer's headers within the request timeout; the stream itself stays open
    const connecting = setTimeout(() => { stream.abort(new Error(`no answer in ${REQUEST_TIMEOUT} ms`)) }, REQUEST_TIMEOUT)
    try {
      const result = await client.GET('/v1/events', {
        params: after != null ? { header: { 'last-event-id': String(after) } } : {},
        parseAs: 'stream',
        signal: stream.signal
      }).finally(() => { clearTimeout(connecting) })
      ok(result)
      const body = result.data
      if (body == null) throw new OctetApiError(result.response.status, 'NO_BODY', 'the event stream answered without a body')
      onOpen()
      for await (const message of readSse(body, STREAM_IDLE_TIMEOUT)) {
        if (message.event === 'stream.closed') return
        if (message.id == null) continue
        yield JSON.parse(message.data) as ApiEvent
      }
    } finally {
      signal.removeEventListener('abort', stop)
      stream.abort()
    }
  }
}

/** The caller's signal, with the request timeout. */
function timeout (signal: AbortSignal): AbortSignal {
  return AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT)])
}

/** Whether an error answer will never succeed however often it is retried (the message is dropped, said in the log). */
export function isPermanent (err: unknown): err is OctetApiError {
  return err instanceof OctetApiError && [400, 404, 409, 413].includes(err.status)
}
