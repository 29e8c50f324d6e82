import { readFile, stat } from 'node:fs/promises'
import { fitsUnixSocket, socketFetch, urlFetch, type ApiFetch } from '../api-socket.js'
import { createOctetClient, OctetApiError, type OctetClient } from '../client/index.js'
import { dataDirPaths } from '../datadir.js'
import { OctetError, systemErrorCode } from '../errors.js'
import { SECOND } from '../units.js'

const REQUEST_TIMEOUT = 30 * SECOND
/** A daemon answers its health check on the socket in about a millisecond; a dead socket refuses at once. */
const SOCKET_PROBE_TIMEOUT = 2 * SECOND
// statuses whose answers have no body: `new Response(body, …)` refuses one for them
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304])

/** The daemon of a data directory, reached through the typed client (`octet/client`), as any bridge would. */
export interface DaemonApi {
  client: OctetClient
  /** where the API is, for people: an http URL, or `unix:<path>` for the socket */
  baseUrl: string
  /** the bearer token, read from the data directory */
  token: string
}

/**
 * The daemon of `dataDir`: over `api.sock` when it exists and answers (the only way in
 * when the daemon runs in a network namespace of its own), else over the URL in `api.url`.
 */
export async function daemonApi (dataDir: string): Promise<DaemonApi> {
  const paths = dataDirPaths(dataDir)
  let token: string
  try {
    token = (await readFile(paths.token, 'utf8')).trim()
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') throw notRunning(dataDir)
    throw new OctetError('DAEMON_NOT_RUNNING', `cannot read the API token in ${dataDir} (${systemErrorCode(err) ?? String(err)})`)
  }
  if (await socketAnswers(paths.apiSocket)) {
    const baseUrl = `unix:${paths.apiSocket}`
    return { baseUrl, token, client: createOctetClient({ baseUrl, token, transport: withDeadline(socketFetch(paths.apiSocket), baseUrl) }) }
  }
  let baseUrl: string
  try {
    baseUrl = (await readFile(paths.apiUrl, 'utf8')).trim()
  } catch (err) {
    if (systemErrorCode(err) === 'ENOENT') throw notRunning(dataDir)
    throw new OctetError('DAEMON_NOT_RUNNING', `cannot read the API address in ${dataDir} (${systemErrorCode(err) ?? String(err)})`)
  }
  return { baseUrl, token, client: createOctetClient({ baseUrl, token, transport: withDeadline(urlFetch(baseUrl), baseUrl) }) }
}

/**
 * An error answer of the API as the CLI reports it: one line with the API's message and
 * code (and exit status 1, as for every OctetError); anything else as it is.
 */
export function cliError (err: unknown): unknown {
  return err instanceof OctetApiError ? new OctetError('API_ERROR', `${err.message} (${err.code})`, { cause: err }) : err
}

/**
 * `send` with the CLI's failures: a request gets `deadline` for its whole answer (its
 * body is read within it), then TIMEOUT; a daemon that cannot be reached is
 * DAEMON_NOT_RUNNING, saying what to do. An event stream (Accept: text/event-stream) is
 * long-lived: it has no deadline and is ended by its caller's signal.
 */
export function withDeadline (send: ApiFetch, baseUrl: string, deadline = REQUEST_TIMEOUT): ApiFetch {
  return async (path, init = {}) => {
    const stream = init.headers?.accept === 'text/event-stream'
    const timeout = stream ? undefined : AbortSignal.timeout(deadline)
    const signal = timeout == null ? init.signal : init.signal == null ? timeout : AbortSignal.any([init.signal, timeout])
    try {
      const response = await send(path, { ...init, ...(signal != null ? { signal } : {}) })
      if (stream) return response
      const body = NULL_BODY_STATUSES.has(response.status) ? null : await response.arrayBuffer()
      return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
    } catch (err) {
      if (timeout?.aborted === true) throw new OctetError('TIMEOUT', `the daemon at ${baseUrl} did not answer within ${deadline / SECOND} s`)
      // the caller gave up: not the daemon's fault
      if (init.signal?.aborted === true) throw err
      throw new OctetError('DAEMON_NOT_RUNNING', `no daemon answers at ${baseUrl} (${describeFetchError(err)}); start one with \`octet daemon\``)
    }
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
