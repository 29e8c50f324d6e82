import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import type { Logger as ComponentLogger } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { Logger } from '../logger.js'

/**
 * Two fixes to the libp2p stack, carried here until they are made upstream (written up as
 * upstream patches in docs/upstream/). Both are about CPU per frame, and both change only
 * how often work is done, never what is sent or received. Measured in the 20-node group
 * benchmark (npm run bench -- groups), where every node handles every message.
 *
 * Each patches private members of a class, which a new upstream version may rename:
 * package.json pins the versions patched, and before patching, each fix checks that every
 * method and field it touches is there. When one is missing the fix stays out (the stack
 * runs as upstream wrote it), `stackFixStatus()` says so with the reason, and the node logs
 * a warning at start (OctetNode's constructor, `warnInactiveStackFixes`).
 */

export interface StackFixStatus {
  /** which fix */
  fix: string
  /** the package it patches, and the version installed ('unknown' when not found) */
  package: string
  version: string
  active: boolean
  /** why it is inactive: the members it did not find, or the error of applying it */
  reason?: string
}

/** A patch of one upstream class, with everything it relies on named so it can be checked first. */
export interface StackFix {
  fix: string
  package: string
  version: string
  /** methods it wraps or calls, looked up on this prototype */
  prototype: object
  methods: string[]
  /** fields it reads or writes, with their `typeof`, looked up on a fresh instance */
  instance: () => object
  fields: Record<string, string>
  /** anything else it relies on (an enum member), by name: false when missing */
  values?: Record<string, boolean>
  apply: () => void
}

/** The members of `fix`'s target that are missing, each named (`method decode()`, `field recvWindow (number)`). */
function missingMembers (fix: StackFix): string[] {
  const missing: string[] = []
  const proto = fix.prototype as Record<string, unknown>
  for (const method of fix.methods) if (typeof proto[method] !== 'function') missing.push(`method ${method}()`)
  let instance: Record<string, unknown>
  try {
    instance = fix.instance() as Record<string, unknown>
  } catch (err) {
    return [...missing, `an instance to check its fields on (constructing one threw: ${err instanceof Error ? err.message : String(err)})`]
  }
  for (const [field, type] of Object.entries(fix.fields)) if (typeof instance[field] !== type) missing.push(`field ${field} (${type})`)
  for (const [name, present] of Object.entries(fix.values ?? {})) if (!present) missing.push(name)
  return missing
}

/** Applies `fix` if its target has every member it relies on; never throws. */
export function installFix (fix: StackFix): StackFixStatus {
  const status = { fix: fix.fix, package: fix.package, version: fix.version }
  const missing = missingMembers(fix)
  if (missing.length > 0) return { ...status, active: false, reason: `missing ${missing.join(', ')}` }
  try {
    fix.apply()
  } catch (err) {
    return { ...status, active: false, reason: `could not be applied: ${err instanceof Error ? err.message : String(err)}` }
  }
  return { ...status, active: true }
}

/** One warning per inactive fix, naming the package, its version and what is missing. */
export function warnInactiveStackFixes (log: Logger, statuses: StackFixStatus[] = stackFixStatus()): void {
  for (const status of statuses) {
    if (status.active) continue
    log.warn({ stackFix: status.fix, package: status.package, version: status.version, reason: status.reason },
      `stack fix ${status.fix} is inactive, ${status.package} ${status.version} runs unpatched: ${status.reason ?? 'unknown reason'}`)
  }
}

/**
 * The installed version of `name`, from its package.json, found the way Node resolves a
 * bare import from here (the package's `exports` do not include its package.json).
 */
export function installedVersion (name: string, from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version?: unknown }
      return typeof pkg.version === 'string' ? pkg.version : 'unknown'
    } catch {}
    if (dirname(dir) === dir) return 'unknown'
  }
}

/**
 * 1. @libp2p/utils 7.4.1: `LengthPrefixedDecoder.decode` (what Noise uses to
 * cut the byte stream of every connection into its frames) reads frames until
 * its length decoder throws a RangeError, and it always asks once more after
 * the last whole frame of a chunk, on an empty buffer. Noise's 2-byte length
 * decoder (`uint16BEDecode`) then throws a new RangeError, so every chunk off
 * every connection created an Error with its stack trace: 5.6 % of all CPU.
 *
 * The fix wraps each decoder's length decoder once: on an empty buffer it
 * throws one RangeError made in advance, which the loop takes as "wait for
 * more bytes" like any other — the same outcome, without the stack trace.
 * Any prefix needs at least one byte, so this holds for every length decoder.
 */
type LengthDecoder = (data: Uint8ArrayList) => number

/** The decoder's own field, private in its typings */
interface DecoderFields { lengthDecoder: LengthDecoder }

const NEEDS_MORE_BYTES = new RangeError('no length prefix in the buffer yet')
const guarded = new WeakSet<LengthDecoder>()

const decoderFix: StackFix = {
  fix: 'length-prefixed-decoder',
  package: '@libp2p/utils',
  version: installedVersion('@libp2p/utils'),
  prototype: LengthPrefixedDecoder.prototype,
  methods: ['decode'],
  instance: () => new LengthPrefixedDecoder(),
  fields: { lengthDecoder: 'function' },
  apply: () => {
    const decode = LengthPrefixedDecoder.prototype.decode
    LengthPrefixedDecoder.prototype.decode = function (this: LengthPrefixedDecoder, buf: Uint8Array | Uint8ArrayList) {
      const fields = this as unknown as DecoderFields
      if (!guarded.has(fields.lengthDecoder)) {
        const decodeLength = fields.lengthDecoder
        const guardedDecodeLength: LengthDecoder = data => {
          if (data.byteLength === 0) throw NEEDS_MORE_BYTES
          return decodeLength(data)
        }
        guarded.add(guardedDecodeLength)
        fields.lengthDecoder = guardedDecodeLength
      }
      return decode.call(this, buf)
    }
  }
}

/**
 * 2. @chainsafe/libp2p-yamux 8.0.1: a stream answers every data frame it reads
 * with a window update, a frame of its own (Noise-encrypted, one more socket
 * write), although its receive window (256 KiB or more) is nowhere near used
 * up by a chat message. An established stream now sends one only once half
 * of its window is used, as go-yamux and rust-yamux do; the peer still always
 * has at least half a window to send into, so it never waits for one. Every
 * other case (opening flags, a paused or closing stream) goes the library's
 * way. Measured, same build with and without: CPU of the group phase 1.6 →
 * 1.46 and 1.74 → 1.6 cores, group p50 (send → stored at all members)
 * 23.9 → 20.0 and 30.2 → 23.3 ms.
 *
 * The library's `sendWindowUpdate` still runs on every data frame: it also grows the
 * window (doubles it, up to the maximum, when data comes within 4 round trips of the
 * last update). While less than half the window is used, it is shown the bytes read
 * since the last update as not yet read, so it sends an update only when it grows the
 * window (granting the growth alone), and the held-back bytes are put back after.
 */
const sendWindowUpdate = YamuxStream.prototype.sendWindowUpdate

/** The stream's own fields, private in its typings */
interface StreamWindow {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
}

const yamuxFix: StackFix = {
  fix: 'yamux-window-update',
  package: '@chainsafe/libp2p-yamux',
  version: installedVersion('@chainsafe/libp2p-yamux'),
  prototype: YamuxStream.prototype,
  methods: ['sendWindowUpdate'],
  instance: () => new YamuxStream({ id: '1', streamId: 1, state: StreamState.Init, direction: 'outbound', log: silentLog(), sendFrame: () => true, getRTT: () => -1 }),
  fields: { state: 'number', recvWindow: 'number', recvWindowCapacity: 'number' },
  values: { 'StreamState.Established': typeof StreamState.Established === 'number' },
  apply: () => {
    YamuxStream.prototype.sendWindowUpdate = function (this: YamuxStream) {
      const stream = this as unknown as StreamWindow
      const unacknowledged = stream.recvWindow - stream.recvWindowCapacity
      if (stream.state !== StreamState.Established || unacknowledged >= stream.recvWindow / 2) {
        sendWindowUpdate.call(this)
        return
      }
      stream.recvWindowCapacity += unacknowledged
      try {
        sendWindowUpdate.call(this)
      } finally {
        stream.recvWindowCapacity -= unacknowledged
      }
    }
  }
}

/** A libp2p component logger that logs nothing, for the probe instance of YamuxStream */
function silentLog (): ComponentLogger {
  const log: ComponentLogger = Object.assign(() => {}, { enabled: false, trace: () => {}, error: () => {}, newScope: () => log })
  return log
}

const statuses = [installFix(decoderFix), installFix(yamuxFix)]

/** Each fix to the stack, active or not (with the reason), as installed when this module loaded. */
export function stackFixStatus (): StackFixStatus[] {
  return statuses.map(status => ({ ...status }))
}
