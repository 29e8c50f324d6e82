/**
 * The typed client of octet's HTTP API, for the CLI, bridges and anything else that
 * drives a daemon: openapi-fetch over the types in `schema.ts`, which are generated from
 * the OpenAPI document the daemon serves (`npm run client`; CI fails when they differ).
 * A route, field or status that changes on the server therefore breaks the build of
 * every caller instead of its behaviour. Published as `octet/client`.
 */
import createClient, { type Client } from 'openapi-fetch'
import { socketFetch, urlFetch, type ApiFetch } from '../api-socket.js'
import type { components, operations, paths } from './schema.js'

export type { components, operations, paths }
export type { Answer, ApiEvent } from './answers.js'
export { socketFetch, urlFetch, type ApiFetch }
export { readSse, SseIdleError, SseParser, type SseEvent } from './sse.js'

/** A client of one daemon's API: `GET`, `POST`, `DELETE` … typed by path. */
export type OctetClient = Client<paths>

/** What every error answer of the API carries. */
export type ApiErrorBody = components['schemas']['Error']

export interface OctetClientOptions {
  /** the API's URL (`http://127.0.0.1:7090`); with `transport`, only a name for people */
  baseUrl: string
  /** the bearer token from the data directory's `api-token` file */
  token: string
  /** how to reach the API, e.g. `socketFetch(<data dir>/api.sock)`; default: fetch against `baseUrl` */
  transport?: ApiFetch
}

/** A standard origin for requests that go through a transport, which ignores it. */
const TRANSPORT_ORIGIN = 'http://octet.localhost'

export function createOctetClient ({ baseUrl, token, transport }: OctetClientOptions): OctetClient {
  const send = transport ?? urlFetch(baseUrl)
  return createClient<paths>({
    baseUrl: transport == null ? baseUrl : TRANSPORT_ORIGIN,
    headers: { authorization: `Bearer ${token}` },
    // every request goes through the one ApiFetch, so the Unix socket and TCP behave alike
    fetch: async (request: Request) => {
      const url = new URL(request.url)
      const body = request.body == null ? undefined : await request.text()
      return await send(url.pathname + url.search, {
        method: request.method,
        headers: Object.fromEntries(request.headers),
        body,
        signal: request.signal
      })
    }
  })
}

/** An error answer of the API: its HTTP status and the error's code and message. */
export class OctetApiError extends Error {
  constructor (readonly status: number, readonly code: string, message: string) {
    super(message)
    this.name = 'OctetApiError'
  }
}

/**
 * The data of a successful answer, or an `OctetApiError` thrown for an error answer:
 * `const peers = ok(await client.GET('/v1/peers'))`.
 */
export function ok<T> (result: { data?: T, error?: unknown, response: Response }): T {
  if (result.response.ok) return result.data as T
  const error = (result.error as Partial<ApiErrorBody> | undefined)?.error
  throw new OctetApiError(result.response.status, error?.code ?? `HTTP_${result.response.status}`, error?.message ?? `HTTP ${result.response.status} ${result.response.statusText}`)
}
