/*
 * /octet/group-history/1.0.0 — catch-up between members, one request per
 * stream, every frame a length-prefixed protobuf of src/wire/groups.proto
 * (at most MAX_HISTORY_FRAME_BYTES):
 *
 *   caller → HistoryRequest{groupId, known: per sender the seq up to which it holds all, limit}, closes its end
 *   member → HistoryResponse{HISTORY_OK, messages, more} pages (per sender in seq order), the last
 *            with more = false; or one HistoryResponse{NOT_A_MEMBER | UNKNOWN_GROUP | BAD_REQUEST |
 *            RATE_LIMITED, reason}; then closes
 *
 * The answer carries GroupMessages as they were published: Sender Key
 * ciphertexts that only members holding the sender's key can open, and whose
 * libsignal signature proves the sender. The server is trusted with nothing
 * but availability: it can withhold, not forge. It answers only peers in the
 * member list it holds, identified by the connection (Noise), and only with
 * what arrived since they became members.
 *
 * A request that does not decode, a frame over the limit or a stall past
 * HISTORY_TIMEOUT: the stream is reset without an answer.
 */
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { FrameReader, resetStream, writeFrames } from '../wire/framing.js'
import { HISTORY_PAGE_BYTES, HISTORY_TIMEOUT, MAX_HISTORY_BYTES, MAX_HISTORY_FRAME_BYTES, MAX_HISTORY_MESSAGES } from './constants.js'
import { HistoryStatus, decodeHistoryRequest, decodeHistoryResponse, encodeHistoryRequest, encodeHistoryResponse, type HistoryRequest, type HistoryResponse } from './codec.js'

/** What the server side needs from the group service. */
export interface HistoryBackend {
  /** whether `peer` may make another request now */
  admit: (peer: string) => boolean
  /**
   * The encoded messages to send `peer` for the request, per sender in seq
   * order, at most `request.limit`; or a refusal.
   */
  select: (peer: string, request: HistoryRequest) => Promise<{ status: HistoryResponse['status'], reason?: string, messages: Uint8Array[] }>
}

export interface ServeOutcome {
  status: HistoryResponse['status']
  sent: number
}

/** The next frame, waiting at most `timeout` for it, or until `abort` (whose reason is thrown then). */
async function nextFrame (reader: FrameReader, pending: Uint8ArrayList[], timeout: number, what: string, abort?: AbortSignal): Promise<Uint8ArrayList> {
  if (pending.length === 0) {
    const timer = AbortSignal.timeout(timeout)
    try {
      pending.push(...await reader.nextBatch(abort == null ? timer : AbortSignal.any([abort, timer])))
    } catch (err) {
      if (abort?.aborted === true) throw abort.reason
      if (timer.aborted && !isOctetError(err)) throw new OctetError('TIMEOUT', `no ${what} within ${timeout} ms`, { cause: err })
      throw err
    }
  }
  const frame = pending.shift()
  if (frame == null) throw new OctetError('MALFORMED_FRAME', `the stream ended before ${what}`)
  return frame
}

/** Serves one inbound stream; never leaves it open. Rejects after resetting it when the caller misbehaves. */
export async function serveHistory (stream: Stream, remotePeer: string, backend: HistoryBackend, timeout = HISTORY_TIMEOUT): Promise<ServeOutcome> {
  const reader = new FrameReader(stream, MAX_HISTORY_FRAME_BYTES)
  const respond = async (response: HistoryResponse): Promise<void> => {
    await writeFrames(stream, [encodeHistoryResponse(response)], AbortSignal.timeout(timeout))
  }
  try {
    const request = decodeHistoryRequest(await nextFrame(reader, [], timeout, 'a request'))
    let outcome: ServeOutcome
    if (!backend.admit(remotePeer)) {
      await respond({ status: HistoryStatus.HISTORY_RATE_LIMITED, reason: 'too many history requests; slow down', messages: [], more: false })
      outcome = { status: HistoryStatus.HISTORY_RATE_LIMITED, sent: 0 }
    } else {
      const selected = await backend.select(remotePeer, request)
      if (selected.status !== HistoryStatus.HISTORY_OK) {
        await respond({ status: selected.status, reason: selected.reason ?? '', messages: [], more: false })
        outcome = { status: selected.status, sent: 0 }
      } else {
        const pages = paginate(selected.messages.slice(0, request.limit))
        for (const [i, page] of pages.entries()) {
          await respond({ status: HistoryStatus.HISTORY_OK, reason: '', messages: page, more: i < pages.length - 1 })
        }
        outcome = { status: HistoryStatus.HISTORY_OK, sent: pages.reduce((n, p) => n + p.length, 0) }
      }
    }
    await stream.close({ signal: AbortSignal.timeout(timeout) }).catch(() => { stream.abort(new OctetError('TIMEOUT', 'closing timed out')) })
    return outcome
  } catch (err) {
    throw resetStream(stream, err)
  } finally {
    reader.dispose()
  }
}

/** Pages of encoded messages, each under HISTORY_PAGE_BYTES (one always fits); at least one page. */
function paginate (messages: Uint8Array[]): Uint8Array[][] {
  const pages: Uint8Array[][] = [[]]
  let bytes = 0
  for (const message of messages) {
    // each repeated bytes field costs a tag and a length prefix beyond its bytes
    const cost = message.byteLength + 6
    const page = pages.at(-1) as Uint8Array[]
    if (page.length > 0 && bytes + cost > HISTORY_PAGE_BYTES) {
      pages.push([message])
      bytes = cost
    } else {
      page.push(message)
      bytes += cost
    }
  }
  return pages
}

/**
 * The caller's side: sends the request and reads every page. Refusals are
 * thrown: NOT_A_MEMBER, NOT_FOUND (unknown group), RATE_LIMITED,
 * BAD_REQUEST; TIMEOUT, PEER_UNREACHABLE, MALFORMED_FRAME when the exchange
 * fails. At most MAX_HISTORY_MESSAGES and MAX_HISTORY_BYTES are taken.
 */
export async function callHistory (stream: Stream, request: HistoryRequest, timeout = HISTORY_TIMEOUT, signal?: AbortSignal): Promise<Uint8Array[]> {
  const reader = new FrameReader(stream, MAX_HISTORY_FRAME_BYTES)
  const pending: Uint8ArrayList[] = []
  try {
    await writeFrames(stream, [encodeHistoryRequest(request)], signal == null ? AbortSignal.timeout(timeout) : AbortSignal.any([signal, AbortSignal.timeout(timeout)]))
    await stream.close({ signal: AbortSignal.timeout(timeout) })
    const messages: Uint8Array[] = []
    let bytes = 0
    while (true) {
      if (signal?.aborted === true) throw signal.reason
      const page = decodeHistoryResponse(await nextFrame(reader, pending, timeout, 'a history page', signal))
      if (page.status !== HistoryStatus.HISTORY_OK) throw refusal(page)
      for (const message of page.messages) {
        messages.push(message)
        bytes += message.byteLength
      }
      if (messages.length > MAX_HISTORY_MESSAGES || bytes > MAX_HISTORY_BYTES) {
        throw new OctetError('MALFORMED_FRAME', `the member sent more than ${MAX_HISTORY_MESSAGES} messages or ${MAX_HISTORY_BYTES} bytes`)
      }
      if (!page.more) return messages
    }
  } catch (err) {
    resetStream(stream, err)
    if (isOctetError(err)) throw err
    throw new OctetError('PEER_UNREACHABLE', `the history stream failed: ${errorMessage(err)}`, { cause: err })
  } finally {
    reader.dispose()
  }
}

function refusal (page: HistoryResponse): OctetError {
  const reason = page.reason === '' ? 'no reason given' : page.reason
  switch (page.status) {
    case HistoryStatus.HISTORY_NOT_A_MEMBER: return new OctetError('NOT_A_MEMBER', `the member refused: ${reason}`)
    case HistoryStatus.HISTORY_UNKNOWN_GROUP: return new OctetError('NOT_FOUND', `the member does not know the group: ${reason}`)
    case HistoryStatus.HISTORY_RATE_LIMITED: return new OctetError('RATE_LIMITED', `the member asks us to slow down: ${reason}`)
    default: return new OctetError('BAD_REQUEST', `the member refused the request: ${reason}`)
  }
}
