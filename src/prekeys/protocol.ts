import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { MAX_BUNDLE_BYTES } from '../crypto/constants.js'
import { OctetError, errorMessage } from '../errors.js'
import { resetStream, untilClosed } from '../wire/framing.js'
import { PREKEY_PROTOCOL, SERVE_TIMEOUT } from './constants.js'

/*
 * /octet/prekeys/1.0.0: the dialer opens a stream and sends nothing; the
 * server writes one length-prefixed SignedPrekeyBundle and closes. A dialer
 * that sends anything is misbehaving and gets a reset.
 */

/** Largest length prefix of a frame of at most MAX_BUNDLE_BYTES (a varint). */
const MAX_LENGTH_BYTES = 3

/**
 * Serves one inbound stream: writes the bundle `produce` makes, closes, and
 * waits for the dialer to close its end so that the stream never lingers
 * half-open. Resets the stream, and throws, when the dialer sends bytes
 * (MALFORMED_FRAME), stalls past `timeout` (TIMEOUT), resets it, or
 * `produce` fails.
 */
export async function serveBundle (stream: Stream, produce: () => Promise<Uint8Array>, timeout = SERVE_TIMEOUT): Promise<void> {
  const signal = AbortSignal.timeout(timeout)
  let failure: Error | undefined
  const fail = (err: Error): void => {
    failure ??= err
    stream.abort(err)
  }
  const onTimeout = (): void => { fail(new OctetError('TIMEOUT', `the dialer did not take its bundle within ${timeout} ms`)) }
  const onMessage = (): void => { fail(new OctetError('MALFORMED_FRAME', `the dialer sent bytes; ${PREKEY_PROTOCOL} has no request`)) }
  signal.addEventListener('abort', onTimeout, { once: true })
  stream.addEventListener('message', onMessage)
  try {
    const bundle = await produce()
    if (failure != null) throw failure
    const lp = lpStream(stream, { maxDataLength: MAX_BUNDLE_BYTES })
    await lp.write(bundle, { signal })
    await stream.close({ signal })
    await untilClosed(stream)
    if (failure != null) throw failure
    if (stream.status !== 'closed') throw new OctetError('PEER_UNREACHABLE', `the dialer ${stream.status === 'reset' ? 'reset' : 'aborted'} the stream`)
  } catch (err) {
    const reason = failure ?? err
    stream.abort(reason instanceof Error ? reason : new Error(errorMessage(reason)))
    throw reason
  } finally {
    signal.removeEventListener('abort', onTimeout)
    stream.removeEventListener('message', onMessage)
  }
}

/**
 * Reads the one bundle frame the server sends, at most MAX_BUNDLE_BYTES
 * (checked before anything is allocated). Returns the frame unverified.
 * BAD_BUNDLE when the server sends no frame, a truncated or oversized one;
 * PEER_UNREACHABLE when the stream fails; the abort reason of `signal` when
 * it fires. A server that has not closed the stream `closeGrace` ms after
 * its frame gets a reset, without holding up the caller.
 */
export async function readBundle (stream: Stream, signal: AbortSignal, closeGrace = SERVE_TIMEOUT): Promise<Uint8Array> {
  const lp = lpStream(stream, {
    maxDataLength: MAX_BUNDLE_BYTES,
    // one frame and its prefix: a server that sends more is cut off
    maxBufferSize: MAX_BUNDLE_BYTES + MAX_LENGTH_BYTES
  })
  try {
    // the request is empty: close our end at once
    await stream.close({ signal })
    const frame = await lp.read({ signal })
    return frame.subarray()
  } catch (err) {
    resetStream(stream, err)
    if (signal.aborted) throw signal.reason
    throw translateReadError(err)
  } finally {
    // the server closes right after its frame; one that keeps the stream open is cut off
    if (stream.status === 'open') {
      untilClosed(stream, AbortSignal.timeout(closeGrace)).catch((err: unknown) => {
        resetStream(stream, err)
      })
    }
  }
}

function translateReadError (err: unknown): OctetError {
  if (err instanceof OctetError) return err
  const name = err instanceof Error ? err.name : ''
  switch (name) {
    case 'InvalidDataLengthError':
    case 'InvalidDataLengthLengthError':
    case 'InvalidMessageLengthError':
    case 'StreamBufferError':
      return new OctetError('BAD_BUNDLE', `the peer sent a prekey frame larger than ${MAX_BUNDLE_BYTES} bytes`, { cause: err })
    case 'UnexpectedEOFError':
      return new OctetError('BAD_BUNDLE', 'the peer closed the stream without sending a whole prekey bundle', { cause: err })
    default:
      return new OctetError('PEER_UNREACHABLE', `reading the prekey bundle failed: ${errorMessage(err)}`, { cause: err })
  }
}

