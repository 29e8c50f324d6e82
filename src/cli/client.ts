import { readFile, stat } from 'node:fs/promises'
import { fitsUnixSocket, socketFetch, urlFetch, type ApiFetch } from '../api-socket.js'
import { dataDirPaths } from '../datadir.js'
import { OctetError, systemErrorCode } from '../errors.js'
import { SECOND } from '../units.js'

const REQUEST_TIMEOUT = 30 * SECOND
/** A daemon answers its health check on the socket in about a millisecond; a dead socket refuses at once. */
const SOCKET_PROBE_TIMEOUT = 2 * SECOND

/** Talks to the daemon of a data directory over its HTTP API, as any bridge would. */
export class ApiClient {
  private readonly send: ApiFetch

  /**
   * `baseUrl` names where the API is, for people (an http URL, or `unix:<path>` for the
   * socket); `transport` reaches it (default: fetch against `baseUrl`).
   */
  constructor (readonly baseUrl: string, private readonly token: string, transport?: ApiFetch) {
    this.send = transport ?? urlFetch(baseUrl)
  }

  /**
   * The daemon of `dataDir`: over `api.sock` when it exists and answers (the only way in
   * when the daemon runs in a network namespace of its own), else over the URL in `api.url`.
   */
  static async forDataDir (dataDir: string): Promise<ApiClient> {
    const paths = dataDirPaths(dataDir)
    let token: string
    try {
      token = (await readFile(paths.token, 'utf8')).trim()
    } catch (err) {
      if (systemErrorCode(err) === 'ENOENT') throw notRunning(dataDir)
      throw new OctetError('DAEMON_NOT_RUNNING', `cannot read the API token in ${dataDir} (${systemErrorCode(err) ?? String(err)})`)
    }
    if (await socketAnswers(paths.apiSocket)) return new ApiClient(`unix:${paths.apiSocket}`, token, socketFetch(paths.apiSocket))
    let url: string
    try {
      url = (await readFile(paths.apiUrl, 'utf8')).trim()
    } catch (err) {
      if (systemErrorCode(err) === 'ENOENT') throw notRunning(dataDir)
      throw new OctetError('DAEMON_NOT_RUNNING', `cannot read the API address in ${dataDir} (${systemErrorCode(err) ?? String(err)})`)
    }
    return new ApiClient(url, token)
  }

  /** A long-lived GET (the event stream): no timeout, ended by `signal`. */
  async stream (path: string, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    let response: Response
    try {
      response = await this.send(path, { headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' }, signal })
    } catch (err) {
      throw new OctetError('DAEMON_NOT_RUNNING', `no daemon answers at ${this.baseUrl} (${describeFetchError(err)}); start one with \`octet daemon\``)
    }
    if (!response.ok || response.body == null) throw new OctetError('API_ERROR', `event stream refused: HTTP ${response.status}`)
    return response.body
  }

  async request<T> (method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT)
    let response: Response
    try {
      response = await this.send(path, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {})
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: signal == null ? timeout : AbortSignal.any([signal, timeout])
      })
    } catch (err) {
      if (timeout.aborted) throw new OctetError('TIMEOUT', `the daemon at ${this.baseUrl} did not answer within ${REQUEST_TIMEOUT / 1000} s`)
      throw new OctetError('DAEMON_NOT_RUNNING', `no daemon answers at ${this.baseUrl} (${describeFetchError(err)}); start one with \`octet daemon\``)
    }
    const text = await response.text()
    const parsed = text === '' ? undefined : JSON.parse(text) as unknown
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string, message?: string } } | undefined)?.error
      throw new OctetError('API_ERROR', `${error?.message ?? `HTTP ${response.status}`} (${error?.code ?? response.status})`)
    }
    return parsed as T
  }
}

function notRunning (dataDir: string): OctetError {
  return new OctetError('DAEMON_NOT_RUNNING', `no octet daemon is running on data directory ${dataDir}; start one with \`octet daemon --data-dir ${dataDir}\``)
}

/** Whether a daemon serves its API on the socket at `path` (a crashed one leaves the file behind). */
async function socketAnswers (path: string): Promise<boolean> {
  if (!fitsUnixSocket(path)) return false
  try {
    if (!(await stat(path)).isSocket()) return false
    const res = await socketFetch(path)('/v1/health', { signal: AbortSignal.timeout(SOCKET_PROBE_TIMEOUT) })
    await res.arrayBuffer()
    return res.ok
  } catch {
    return false
  }
}

function describeFetchError (err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined
  return systemErrorCode(cause) ?? (err instanceof Error ? err.message : String(err))
}
