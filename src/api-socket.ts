import { request as httpRequest, STATUS_CODES } from 'node:http'
import { Readable } from 'node:stream'

/**
 * Unix sockets carry a path of at most 107 bytes on Linux (108 with the terminating NUL,
 * `sun_path` in sockaddr_un); a longer one cannot be bound or connected to at all.
 */
export const UNIX_SOCKET_PATH_MAX = 107

/** Whether `path` fits in a Unix socket address. */
export function fitsUnixSocket (path: string): boolean {
  return Buffer.byteLength(path) <= UNIX_SOCKET_PATH_MAX
}

/** What the API clients send: the subset of fetch's RequestInit octet uses. */
export interface ApiRequestInit {
  method?: string
  headers?: Record<string, string>
  body?: string
  signal?: AbortSignal
}

/** A fetch bound to one daemon's API: `path` is the part after the origin (`/v1/peers`). */
export type ApiFetch = (path: string, init?: ApiRequestInit) => Promise<Response>

/** Over TCP: plain fetch against the API URL. */
export function urlFetch (baseUrl: string): ApiFetch {
  return async (path, init = {}) => await fetch(baseUrl + path, init)
}

// statuses whose responses have no body: `new Response(body, …)` refuses one for them
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304])

/**
 * Over the daemon's Unix socket (`api.sock`). fetch (undici) has no simple way to reach a
 * Unix socket, so this is node:http with `socketPath`, its answer wrapped in a standard
 * Response so that callers handle both transports alike. The body streams: an event
 * stream stays open until `signal` aborts. Connection errors reject with the system error
 * (ENOENT, ECONNREFUSED …) as `cause`, as fetch does.
 */
export function socketFetch (socketPath: string): ApiFetch {
  return async (path, init = {}) => await new Promise<Response>((resolve, reject) => {
    const req = httpRequest({
      socketPath,
      path,
      method: init.method ?? 'GET',
      // the Host header is required by HTTP/1.1; its value means nothing on a socket
      headers: { host: 'octet', ...init.headers },
      signal: init.signal
    }, res => {
      const status = res.statusCode ?? 500
      const headers = new Headers()
      for (const [name, value] of Object.entries(res.headers)) {
        if (Array.isArray(value)) for (const v of value) headers.append(name, v)
        else if (value != null) headers.set(name, value)
      }
      const body = NULL_BODY_STATUSES.has(status) || init.method === 'HEAD'
        ? null
        : Readable.toWeb(res) as ReadableStream<Uint8Array>
      if (body == null) res.resume()
      resolve(new Response(body, { status, statusText: res.statusMessage ?? STATUS_CODES[status], headers }))
    })
    req.once('error', err => { reject(new TypeError(`request to ${socketPath} failed`, { cause: err })) })
    req.end(init.body)
  })
}
