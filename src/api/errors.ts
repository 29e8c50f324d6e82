import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { OctetError, type ErrorCode } from '../errors.js'
import type { Logger } from '../logger.js'

/** The one mapping from error codes to HTTP statuses. */
const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  BAD_REQUEST: 400,
  INVALID_PEER_ID: 400,
  INVALID_ADDRESS: 400,
  INVALID_MULTIADDR: 400,
  UNAUTHORIZED: 401,
  HOST_NOT_ALLOWED: 403,
  NOT_A_MEMBER: 403,
  NOT_AN_ADMIN: 403,
  REQUEST_TIMEOUT: 408,
  EVENTS_PRUNED: 410,
  HEADERS_TOO_LARGE: 431,
  NOT_FOUND: 404,
  PEER_NOT_FOUND: 404,
  CONFLICT: 409,
  IDENTITY_CHANGED: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  DISK_FULL: 507,
  TIMEOUT: 504
}

export interface ErrorBody {
  error: { code: string, message: string }
}

export function errorBody (code: string, message: string): ErrorBody {
  return { error: { code, message } }
}

export function statusForCode (code: ErrorCode): number {
  return STATUS_BY_CODE[code] ?? 500
}

/** Fastify's own errors (validation, body size, content type) in octet's shape. */
function fromFastifyError (err: FastifyError): { status: number, code: ErrorCode, message: string } {
  if (err.validation != null) {
    return { status: 400, code: 'BAD_REQUEST', message: `invalid request: ${err.message}` }
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'request body too large' }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'BAD_REQUEST', message: 'send JSON with Content-Type: application/json' }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'BAD_REQUEST', message: `invalid JSON body: ${err.message}` }
  }
  if (err.statusCode != null && err.statusCode >= 400 && err.statusCode < 500) {
    return { status: err.statusCode, code: 'BAD_REQUEST', message: err.message }
  }
  return { status: 500, code: 'INTERNAL', message: 'internal error' }
}

export function makeErrorHandler (log: Logger) {
  return async function handleError (err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): Promise<ErrorBody> {
    let status: number
    let code: ErrorCode
    let message: string
    if (err instanceof OctetError) {
      status = statusForCode(err.code)
      code = status === 500 ? 'INTERNAL' : err.code
      message = status === 500 ? 'internal error' : err.message
    } else {
      ({ status, code, message } = fromFastifyError(err as FastifyError))
    }
    if (status >= 500) log.error({ err, url: request.url }, 'API request failed')
    else log.debug({ code, url: request.url }, message)
    void reply.code(status)
    return errorBody(code, message)
  }
}

/**
 * Node's HTTP server refuses some requests before fastify sees them: a
 * malformed request line or header (400), headers over the size limit (431),
 * a request that took too long to arrive (408). Its own answers have no body;
 * these are the same refusals in octet's error shape. Installed as the
 * server's `clientError` listener (which makes Node leave the answer to us).
 */
export function answerClientError (err: Error & { code?: string }, socket: Duplex): void {
  // the client is gone, or an answer is already on its way: nothing to say
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy()
    return
  }
  const [code, message]: [ErrorCode, string] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? ['HEADERS_TOO_LARGE', 'request headers too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['REQUEST_TIMEOUT', 'the request did not arrive in time']
        : ['BAD_REQUEST', `malformed HTTP request (${err.code ?? err.message})`]
  const status = statusForCode(code)
  const body = JSON.stringify(errorBody(code, message))
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}
