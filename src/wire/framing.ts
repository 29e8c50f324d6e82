import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { decode as decodeVarint, encode as encodeVarint, encodingLength } from 'uint8-varint'
import { OctetError, errorMessage } from '../errors.js'

/** A varint length prefix never needs more than this many bytes for our limits. */
const MAX_PREFIX_BYTES = 5
/**
 * Bytes received but not yet consumed (parsed frames and a partial one) at which the stream is
 * paused, so the peer's writes wait (backpressure) instead of piling up here. Counted in bytes,
 * not frames: 1,024 frames were anything from 1 MiB to 64 MiB per stream, depending on what the
 * peer chose to send. 1 MiB still holds a whole send window of ordinary messages (512 sealed
 * 1 KiB texts are ~750 KiB), so a receiver keeps storing full bursts in one database batch.
 */
export const HIGH_WATER_BYTES = 1024 * 1024

/**
 * Length-prefixed frames from a libp2p 3 message stream, parsed as the bytes
 * arrive. Unlike reading the prefix byte by byte, each frame costs one parse,
 * however many frames are queued; and `nextBatch` hands over every frame that
 * is already here, so a receiver can store a burst in one database batch.
 * A prefix over `maxLength` is refused before any buffer is allocated for it.
 */
export class FrameReader {
  private readonly buffer = new Uint8ArrayList()
  private readonly frames: Uint8ArrayList[] = []
  private ended = false
  private failure: Error | undefined
  private wake: (() => void) | undefined
  private paused = false
  /** bytes of `frames` */
  private framedBytes = 0

  constructor (private readonly stream: Stream, private readonly maxLength: number) {
    stream.addEventListener('message', this.onMessage)
    stream.addEventListener('remoteCloseWrite', this.onEnd)
    stream.addEventListener('close', this.onClose)
  }

  private readonly onMessage = (event: { data: Uint8Array | Uint8ArrayList }): void => {
    if (this.failure != null) return
    this.buffer.append(event.data)
    try {
      this.parse()
    } catch (err) {
      this.failure = err as Error
    }
    if (this.bufferedBytes >= HIGH_WATER_BYTES && !this.paused) {
      this.paused = true
      this.stream.pause()
    }
    this.notify()
  }

  /** What this reader holds: frames not yet taken by nextBatch and the start of the next one. */
  get bufferedBytes (): number {
    return this.framedBytes + this.buffer.byteLength
  }

  private readonly onEnd = (): void => {
    this.ended = true
    this.notify()
  }

  private readonly onClose = (event: Event): void => {
    const error = (event as Event & { error?: Error }).error
    if (error != null) this.failure ??= error
    this.ended = true
    this.notify()
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  private parse (): void {
    while (this.buffer.byteLength > 0) {
      let length: number
      try {
        length = decodeVarint(this.buffer)
      } catch (err) {
        // an incomplete varint: wait for more bytes, unless it is already too long to be valid
        if (this.buffer.byteLength >= MAX_PREFIX_BYTES) throw new OctetError('MALFORMED_FRAME', 'bad length prefix', { cause: err })
        return
      }
      if (length > this.maxLength) throw new OctetError('FRAME_TOO_LARGE', `frame of ${length} bytes announced; the limit is ${this.maxLength}`)
      const prefix = encodingLength(length)
      if (this.buffer.byteLength < prefix + length) return
      this.frames.push(this.buffer.sublist(prefix, prefix + length))
      this.framedBytes += length
      this.buffer.consume(prefix + length)
    }
  }

  /**
   * Every frame received so far (at least one), waiting for the first if none
   * is here; an empty array when the peer ended the stream. Throws the
   * framing error (FRAME_TOO_LARGE, MALFORMED_FRAME) or the stream's error.
   */
  async nextBatch (signal?: AbortSignal): Promise<Uint8ArrayList[]> {
    while (this.frames.length === 0) {
      if (this.failure != null) throw this.failure
      if (this.ended) return []
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => { reject(signal?.reason ?? new Error('aborted')) }
        if (signal?.aborted === true) { onAbort(); return }
        signal?.addEventListener('abort', onAbort, { once: true })
        this.wake = () => { signal?.removeEventListener('abort', onAbort); resolve() }
      })
    }
    const batch = this.frames.splice(0, this.frames.length)
    this.framedBytes = 0
    if (this.paused) {
      this.paused = false
      this.stream.resume()
    }
    return batch
  }

  dispose (): void {
    this.stream.removeEventListener('message', this.onMessage)
    this.stream.removeEventListener('remoteCloseWrite', this.onEnd)
    this.stream.removeEventListener('close', this.onClose)
  }
}

/** Writes frames with their length prefixes in one send; waits for drain when the stream is full. */
export async function writeFrames (stream: Stream, frames: Uint8Array[], signal?: AbortSignal): Promise<void> {
  const list = new Uint8ArrayList()
  for (const frame of frames) list.append(encodeVarint(frame.byteLength), frame)
  if (!stream.send(list)) await stream.onDrain({ signal })
}

/** Resolves once the stream is closed, reset or aborted; rejects when `signal` fires first. */
export async function untilClosed (stream: Stream, signal?: AbortSignal): Promise<void> {
  if (stream.status !== 'open' && stream.status !== 'closing') return
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      stream.removeEventListener('close', done)
      signal?.removeEventListener('abort', aborted)
      resolve()
    }
    const aborted = (): void => {
      stream.removeEventListener('close', done)
      reject(signal?.reason)
    }
    if (signal?.aborted === true) {
      reject(signal.reason)
      return
    }
    stream.addEventListener('close', done)
    signal?.addEventListener('abort', aborted, { once: true })
  })
}

/**
 * Resets `stream` because of `err`, handing the stream an Error (what libp2p
 * passes on to the stream's other users), and returns it for the caller to throw.
 */
export function resetStream (stream: Stream, err: unknown): Error {
  const reason = err instanceof Error ? err : new Error(errorMessage(err))
  stream.abort(reason)
  return reason
}
