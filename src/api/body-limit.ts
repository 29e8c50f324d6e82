import type { IncomingMessage } from 'node:http'
import { STATUS_CODES } from 'node:http'
import { Socket } from 'node:net'
import { KiB, SECOND } from '../units.js'
import { errorBody, statusForCode } from './errors.js'

/** Request bodies above this are refused with 413 before they are parsed. */
export const API_BODY_LIMIT = 64 * KiB
/**
 * Of a refused body, this much is read and thrown away, so that a client still sending gets
 * to read the 413: a server that closes a connection with unread data in it resets it, and the
 * reset can reach the client before it read the answer. Past this, reading stops.
 */
export const BODY_DISCARD_LIMIT = 16 * API_BODY_LIMIT
/**
 * After the answer, how long the client may send nothing (it took the answer and should hang
 * up; or it went past BODY_DISCARD_LIMIT and is no longer read) before the connection is cut.
 */
export const REFUSED_BODY_LINGER = 2 * SECOND
/** However it sends, a refused client is cut off this long after the answer (one byte a second would take days to reach the limit). */
export const REFUSED_BODY_DEADLINE = 30 * SECOND

/** Whether the request says it carries a body over the limit (Content-Length). */
export function declaresBodyTooLarge (req: IncomingMessage): boolean {
  const length = Number(req.headers['content-length'])
  return Number.isFinite(length) && length > API_BODY_LIMIT
}

/**
 * Whether refuseBody can answer this request: it came over a connection (TCP or the Unix
 * socket). A request made with fastify's inject() has none, and is refused the usual way.
 */
export function onConnection (req: IncomingMessage): boolean {
  return req.socket instanceof Socket
}

/**
 * Answers 413 PAYLOAD_TOO_LARGE in octet's error shape, straight on the socket (the caller
 * hijacked the reply, or no reply exists yet), with `Connection: close`, and ends our side at
 * once. Then reads what the client still sends and discards it, up to BODY_DISCARD_LIMIT bytes;
 * the connection is closed when the client hangs up, when it sent nothing that is read for
 * REFUSED_BODY_LINGER (its body ended, it went past the limit, or it waits for a 100 Continue
 * that does not come), and at the latest REFUSED_BODY_DEADLINE after the answer. Memory stays
 * bounded: nothing read is kept, and past the limit nothing more is read (the request is paused,
 * so the socket is, and the client's sending stalls).
 */
export function refuseBody (req: IncomingMessage, limits = { discard: BODY_DISCARD_LIMIT, linger: REFUSED_BODY_LINGER, deadline: REFUSED_BODY_DEADLINE }): void {
  const socket = req.socket
  const status = statusForCode('PAYLOAD_TOO_LARGE')
  const body = JSON.stringify(errorBody('PAYLOAD_TOO_LARGE', `request body too large: the limit is ${API_BODY_LIMIT} bytes`))
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
  const cut = (): void => { socket.destroy() }
  const idle = setTimeout(cut, limits.linger)
  const deadline = setTimeout(cut, limits.deadline)
  socket.once('close', () => {
    clearTimeout(idle)
    clearTimeout(deadline)
  })
  if (req.complete) return
  let discarded = 0
  const onData = (chunk: Buffer): void => {
    discarded += chunk.length
    if (discarded <= limits.discard) {
      idle.refresh()
      return
    }
    req.off('data', onData)
    req.pause()
  }
  req.on('data', onData)
  req.once('error', cut)
  req.resume()
}
