import { randomBytes } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { encode as encodeVarint } from 'uint8-varint'
import { Uint8ArrayList } from 'uint8arraylist'
import { OctetError, errorMessage, isOctetError } from '../errors.js'
import { FrameReader, resetStream, untilClosed, writeFrames } from '../wire/framing.js'
import { MailboxChallenge, MailboxNotify, MailboxOp, MailboxResponse, MailboxStatus, type MailboxRequest } from '../wire/mailbox.pb.js'
import { DEFAULT_FETCH_LIMIT, FETCH_PAGE_BYTES, MAX_FETCH_LIMIT, MAX_MAILBOX_FRAME_BYTES, NONCE_BYTES, REQUEST_TIMEOUT, WRITE_TIMEOUT } from './constants.js'
import { verifyProof, type ProofOp } from './proof.js'
import { Frames, decodeProof, decodeRequest, expectFrame, owned, requestProblem } from './protocol.js'
import type { Page } from './store.js'

/*
 * The mailbox's side of /octet/mailbox/1.0.0 (the exchanges are described in
 * protocol.ts): one inbound stream, one request, answered through a
 * MailboxBackend, which is all it knows of the service (limits, the store,
 * the watchers). The service's policy stays in server.ts; this file is the
 * order of frames and what each refusal answers.
 */

/** A request's kind, as the backend's admit() is asked about it. */
export type Op = 'STORE' | 'FETCH' | 'DELETE' | 'WATCH'

/** A watch as the backend registered it (see watchers.ts). */
export interface WatchHandle {
  /** fires when the mailbox ends the watch */
  signal: AbortSignal
  release: () => void
}

export type WatchRegistration =
  | { accepted: true, watch: WatchHandle, count: number }
  | { accepted: false, status: MailboxStatus, reason: string }

/** What the server side needs from the service. */
export interface MailboxBackend {
  /** this node's PeerId: the mailbox that proofs must name */
  self: string
  /** the PeerId the connection authenticated: a WATCH is for this peer's own mailbox only */
  remotePeer: string
  /** Whether the remote peer may make another request of this kind now (rate limit). */
  admit: (op: Op) => boolean
  /** `duplicate`: OK, and these bytes were held already */
  store: (recipient: string, sealed: Uint8Array) => Promise<{ status: MailboxStatus, reason?: string, count?: number, duplicate?: boolean }>
  page: (recipient: string, after: string | undefined, limit: number, maxBytes: number) => Promise<Page>
  delete: (recipient: string, ids: Uint8Array[]) => Promise<number>
  /**
   * Registers a watch: `notify` is called on every store for `recipient`
   * (synchronously, from the store path: it must not wait); `count` is
   * what is held for it now.
   */
  watch: (recipient: string, notify: (count: number) => void) => WatchRegistration
}

export interface ServeOptions {
  /** for the request and for the proof, each */
  timeout?: number
  writeTimeout?: number
}

/** How a served request ended (the stream is closed). */
export interface ServeOutcome {
  op: MailboxOp
  status: MailboxStatus
  reason: string
  /** STORE: held for the recipient; FETCH: envelopes sent; DELETE: deleted; WATCH: notifies written */
  count: number
  /** WATCH: the watch ended because a notify could not be written (the stream is reset) */
  notifyFailed?: boolean
}

/**
 * Serves one inbound stream (one request). Resolves with the outcome once
 * the answer is written and the stream closed; rejects (MALFORMED_FRAME,
 * FRAME_TOO_LARGE, TIMEOUT, or the stream's error) after resetting the
 * stream when the caller misbehaves or goes away. Never leaves it open.
 */
export async function serveMailbox (stream: Stream, backend: MailboxBackend, options: ServeOptions = {}): Promise<ServeOutcome> {
  const timeout = options.timeout ?? REQUEST_TIMEOUT
  const writeTimeout = options.writeTimeout ?? WRITE_TIMEOUT
  const frames = new Frames(new FrameReader(stream, MAX_MAILBOX_FRAME_BYTES))
  const respond = async (response: Partial<MailboxResponse>): Promise<void> => {
    await writeFrames(stream, [MailboxResponse.encode(response)], AbortSignal.timeout(writeTimeout))
  }
  try {
    const request = decodeRequest(await expectFrame(frames, timeout, 'a request'))
    const outcome = await answer(request)
    try {
      await stream.close({ signal: AbortSignal.timeout(writeTimeout) })
      // the caller closed its end after its last frame; one that keeps it open is cut off
      await untilClosed(stream, AbortSignal.timeout(timeout))
    } catch (err) {
      // answered already: a caller that does not close properly only loses its stream
      stream.abort(err instanceof Error ? err : new OctetError('TIMEOUT', 'the caller kept the stream open'))
    }
    return outcome
  } catch (err) {
    throw resetStream(stream, err)
  } finally {
    frames.reader.dispose()
  }

  async function answer (request: MailboxRequest): Promise<ServeOutcome> {
    const op = request.op
    const refuse = async (status: MailboxStatus, reason: string): Promise<ServeOutcome> => {
      await respond({ status, reason })
      return { op, status, reason, count: 0 }
    }
    if (op !== MailboxOp.STORE && op !== MailboxOp.FETCH && op !== MailboxOp.DELETE && op !== MailboxOp.WATCH) {
      return await refuse(MailboxStatus.BAD_REQUEST, `unknown op ${op}`)
    }
    const admitted = backend.admit(op)
    const invalid = requestProblem(request)

    if (op === MailboxOp.STORE) {
      if (!admitted) return await refuse(MailboxStatus.RATE_LIMITED, 'too many STOREs from this peer or its network; slow down')
      if (invalid != null) return await refuse(MailboxStatus.BAD_REQUEST, invalid)
      // nobody would ever fetch it: a recipient asks the peers closest to it, never itself
      if (request.recipient === backend.self) return await refuse(MailboxStatus.BAD_REQUEST, 'this mailbox is the recipient; deliver to it directly')
      const result = await backend.store(request.recipient, request.sealed)
      const response = { status: result.status, reason: result.reason ?? '', count: result.count ?? 0 }
      await respond({ ...response, duplicate: result.duplicate === true })
      return { op, ...response }
    }

    if (op === MailboxOp.WATCH) {
      if (!admitted) return await refuse(MailboxStatus.RATE_LIMITED, 'too many WATCHes from this peer; slow down')
      if (invalid != null) return await refuse(MailboxStatus.BAD_REQUEST, invalid)
      // the Noise handshake proved who is on the other end: that peer may watch its own mailbox, no other
      if (request.recipient !== backend.remotePeer) {
        return await refuse(MailboxStatus.UNAUTHORIZED, `a peer watches its own mailbox only: the recipient must be ${backend.remotePeer}, the PeerId of this connection`)
      }
      return await holdWatch(request.recipient)
    }

    // FETCH and DELETE: the challenge always comes first, so that the caller
    // knows which message the next frame is
    const nonce = new Uint8Array(randomBytes(NONCE_BYTES))
    await writeFrames(stream, [MailboxChallenge.encode({ nonce })], AbortSignal.timeout(writeTimeout))
    const proof = decodeProof(await expectFrame(frames, timeout, 'a proof'))
    if (!admitted) return await refuse(MailboxStatus.RATE_LIMITED, `too many ${op}s from this peer; slow down`)
    if (invalid != null) return await refuse(MailboxStatus.BAD_REQUEST, invalid)
    const proved = await verifyProof({ mailbox: backend.self, recipient: request.recipient, op: op as ProofOp, nonce, ids: request.ids }, proof.signature)
    if (!proved) return await refuse(MailboxStatus.UNAUTHORIZED, `the proof does not verify: it must be signed with the key of ${request.recipient} over this mailbox, op and challenge`)

    if (op === MailboxOp.DELETE) {
      const count = await backend.delete(request.recipient, request.ids)
      await respond({ status: MailboxStatus.OK, count })
      return { op, status: MailboxStatus.OK, reason: '', count }
    }

    const limit = Math.min(request.limit === 0 ? DEFAULT_FETCH_LIMIT : request.limit, MAX_FETCH_LIMIT)
    let cursor: string | undefined
    let sent = 0
    while (true) {
      const page = await backend.page(request.recipient, cursor, limit, FETCH_PAGE_BYTES)
      await respond({
        status: MailboxStatus.OK,
        envelopes: page.envelopes.map(e => ({ id: owned(e.id), sealed: owned(e.sealed), storedAt: BigInt(e.storedAt) })),
        more: page.more
      })
      sent += page.envelopes.length
      if (!page.more) return { op, status: MailboxStatus.OK, reason: '', count: sent }
      cursor = page.cursor
    }
  }

  /** WATCH accepted so far: register, answer with the count held, then notify until one side ends it. */
  async function holdWatch (recipient: string): Promise<ServeOutcome> {
    const op = MailboxOp.WATCH
    const writer = new NotifyWriter(stream, writeTimeout)
    // registered before the count is read, so that no store falls between the two
    const registration = backend.watch(recipient, count => { writer.push(count) })
    if (!registration.accepted) {
      await respond({ status: registration.status, reason: registration.reason })
      return { op, status: registration.status, reason: registration.reason, count: 0 }
    }
    const { watch } = registration
    try {
      await respond({ status: MailboxStatus.OK, count: registration.count })
      // notifies that came while the answer was written follow it, never precede it
      writer.open()
      const ended = AbortSignal.any([watch.signal, writer.failed])
      let frame: Uint8ArrayList | undefined
      try {
        frame = await frames.next(ended)
      } catch (err) {
        if (!ended.aborted) {
          // garbage from the watcher is its fault; a stream that broke (the connection went) is a watcher gone
          if (isOctetError(err)) throw err
          return { op, status: MailboxStatus.OK, reason: `the watcher went away: ${errorMessage(err)}`, count: writer.sent }
        }
        // the mailbox ended the watch (expired, displaced, stopping): close as after any answer
        if (writer.failed.aborted) {
          // a watcher that does not read its notifies loses its watch, not our time
          const reason = writer.failed.reason as Error
          stream.abort(reason)
          return { op, status: MailboxStatus.OK, reason: reason.message, count: writer.sent, notifyFailed: true }
        }
        return { op, status: MailboxStatus.OK, reason: '', count: writer.sent }
      }
      if (frame != null) throw new OctetError('MALFORMED_FRAME', 'a frame on a WATCH stream: the watcher sends nothing after its request')
      // the watcher closed its end: the watch is over
      return { op, status: MailboxStatus.OK, reason: '', count: writer.sent }
    } finally {
      watch.release()
    }
  }
}

/**
 * Writes MailboxNotify frames on a held WATCH stream without ever making the
 * store path wait: push() returns at once. While a write waits for the
 * stream to drain (a watcher that does not read), later notifies collapse
 * into one carrying the latest count; a watcher that stays stuck past the
 * write timeout fails the watch.
 */
export class NotifyWriter {
  sent = 0
  private latest: number | undefined
  private opened = false
  private draining = false
  private readonly failure = new AbortController()

  constructor (private readonly stream: Stream, private readonly writeTimeout: number) {}

  /** fires when a notify could not be written: the watch is over */
  get failed (): AbortSignal {
    return this.failure.signal
  }

  push (count: number): void {
    this.latest = count
    if (this.opened && !this.draining) this.flush()
  }

  /** after the answer to WATCH went out: writes what was pushed before */
  open (): void {
    this.opened = true
    this.flush()
  }

  private flush (): void {
    while (this.latest != null && !this.failure.signal.aborted) {
      const frame = MailboxNotify.encode({ count: this.latest })
      this.latest = undefined
      let written: boolean
      try {
        written = this.stream.send(new Uint8ArrayList(encodeVarint(frame.byteLength), frame))
      } catch (err) {
        this.fail(err)
        return
      }
      this.sent++
      if (!written) {
        this.draining = true
        this.stream.onDrain({ signal: AbortSignal.timeout(this.writeTimeout) }).then(() => {
          this.draining = false
          this.flush()
        }, (err: unknown) => { this.fail(err) })
        return
      }
    }
  }

  private fail (err: unknown): void {
    this.failure.abort(new OctetError('PEER_UNREACHABLE', `a notify could not be written: ${errorMessage(err)}`, { cause: err }))
  }
}
