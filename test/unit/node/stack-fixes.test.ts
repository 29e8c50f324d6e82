import fc from 'fast-check'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import type { Logger as ComponentLogger } from '@libp2p/interface'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { pino } from 'pino'
import { Uint8ArrayList } from 'uint8arraylist'
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as varint from 'uint8-varint'
import { installFix, installedVersion, stackFixStatus, warnInactiveStackFixes, type StackFix } from '../../../src/node/stack-fixes.js'

/** Noise's length decoder (@chainsafe/libp2p-noise encoder.ts): a 2-byte big-endian prefix. */
const uint16BEDecode = (data: Uint8ArrayList): number => {
  if (data.byteLength < 2) throw new RangeError('Could not decode int16BE')
  return data.getUint16(0)
}

function frame16 (payload: Uint8Array): Uint8Array {
  return Uint8Array.from([payload.length >> 8, payload.length & 0xff, ...payload])
}

function frameVarint (payload: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint.encode(payload.length), ...payload])
}

/** `bytes` cut at `cuts` (positions, any order, duplicates allowed). */
function chunks (bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map(c => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let from = 0
  for (const point of [...points, bytes.length]) {
    out.push(bytes.subarray(from, point))
    from = point
  }
  return out
}

function decodeAll (decoder: LengthPrefixedDecoder, parts: Uint8Array[]): Uint8Array[] {
  const frames: Uint8Array[] = []
  for (const part of parts) for (const frame of decoder.decode(part)) frames.push(frame.subarray())
  return frames
}

describe('the length-prefixed decoder fix', () => {
  const payloads = fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 12 })
  const cuts = fc.array(fc.nat(), { maxLength: 20 })

  it('cuts any byte stream of 2-byte-prefixed frames (Noise) into the same frames, however it arrives', () => {
    fc.assert(fc.property(payloads, cuts, (frames, at) => {
      const stream = Uint8Array.from(frames.flatMap(f => [...frame16(f)]))
      const decoder = new LengthPrefixedDecoder({ lengthDecoder: uint16BEDecode, encodingLength: () => 2 })
      expect(decodeAll(decoder, chunks(stream, at))).toEqual(frames)
    }))
  })

  it('does the same for varint prefixes, the default', () => {
    fc.assert(fc.property(payloads, cuts, (frames, at) => {
      const stream = Uint8Array.from(frames.flatMap(f => [...frameVarint(f)]))
      expect(decodeAll(new LengthPrefixedDecoder(), chunks(stream, at))).toEqual(frames)
    }))
  })

  it('is active: chunks of whole frames make the length decoder throw nothing (upstream: once per chunk, on the empty buffer after the last frame)', () => {
    let throws = 0
    const counting = (data: Uint8ArrayList): number => {
      try {
        return uint16BEDecode(data)
      } catch (err) {
        throws++
        throw err
      }
    }
    const decoder = new LengthPrefixedDecoder({ lengthDecoder: counting, encodingLength: () => 2 })
    const chunk = Uint8Array.from([...frame16(Uint8Array.of(1)), ...frame16(Uint8Array.of(2, 3))])
    for (let i = 0; i < 100; i++) expect(decodeAll(decoder, [chunk])).toEqual([Uint8Array.of(1), Uint8Array.of(2, 3)])
    expect(throws).toBe(0)
    // a prefix cut in two still waits for its second byte, through the length decoder's own RangeError
    expect(decodeAll(decoder, [chunk.subarray(0, 1)])).toEqual([])
    expect(throws).toBe(1)
    expect(decodeAll(decoder, [chunk.subarray(1)])).toEqual([Uint8Array.of(1), Uint8Array.of(2, 3)])
  })

  it('still refuses a frame over the limit, and errors of the length decoder that are not RangeErrors', () => {
    const small = new LengthPrefixedDecoder({ lengthDecoder: uint16BEDecode, encodingLength: () => 2, maxDataLength: 10 })
    expect(() => decodeAll(small, [frame16(new Uint8Array(11))])).toThrow(/length/i)
    const broken = new LengthPrefixedDecoder({ lengthDecoder: () => { throw new TypeError('broken prefix') } })
    expect(() => decodeAll(broken, [Uint8Array.of(1, 2)])).toThrow('broken prefix')
  })
})

/** yamux's initial stream window (its specification), and the maximum octet sets (MAX_STREAM_WINDOW) */
const INITIAL_WINDOW = 256 * 1024
const MAX_WINDOW = 1024 * 1024
const RTT = 10

function silentLog (): ComponentLogger {
  const log: ComponentLogger = Object.assign(() => {}, { enabled: false, trace: () => {}, error: () => {}, newScope: () => log })
  return log
}

/**
 * The receiving side of an established yamux stream whose peer writes `frame` bytes at a time,
 * one every `every` ms, on a clock of our own; what we learn is what goes on the wire back:
 * the window updates, and so the credit the peer has to send into.
 */
function receive ({ frames, frame, every }: { frames: number, frame: number, every: number }): { updates: number, maxCredit: number, minCredit: number } {
  let now = 1_000_000
  vi.spyOn(Date, 'now').mockImplementation(() => now)
  let credit = INITIAL_WINDOW
  let updates = 0
  const stream = new YamuxStream({
    id: '1',
    streamId: 1,
    state: StreamState.Established,
    direction: 'inbound',
    log: silentLog(),
    maxStreamWindowSize: MAX_WINDOW,
    getRTT: () => RTT,
    sendFrame: header => {
      // a window update (type 1) that grants credit
      if (header.type === 1 && header.length > 0) { updates++; credit += header.length }
      return true
    }
  })
  stream.addEventListener('message', () => {})
  let maxCredit = credit
  let minCredit = credit
  for (let i = 0; i < frames; i++) {
    now += every
    credit -= frame
    // a data frame (type 0) as the muxer hands it to the stream (yamux has its own copy of uint8arraylist)
    stream.handleData({ header: { type: 0, flag: 0, streamID: 1, length: frame }, data: new Uint8ArrayList(new Uint8Array(frame)) } as unknown as Parameters<YamuxStream['handleData']>[0])
    maxCredit = Math.max(maxCredit, credit)
    minCredit = Math.min(minCredit, credit)
  }
  return { updates, maxCredit, minCredit }
}

describe('the yamux window update fix', () => {
  afterEach(() => { vi.restoreAllMocks() })

  it('is active: a chat stream sends a window update per half window read, not one per data frame, and its peer always has half a window to send into', () => {
    // 1,000 messages of 1 KiB, a second apart (far beyond 4 round trips: the window does not grow)
    const { updates, minCredit, maxCredit } = receive({ frames: 1000, frame: 1024, every: 1000 })
    // 1,000 KiB read in half windows of 128 KiB: 7 updates; upstream sends 1,000
    expect(updates).toBe(7)
    expect(minCredit).toBeGreaterThanOrEqual(INITIAL_WINDOW / 2)
    expect(maxCredit).toBe(INITIAL_WINDOW)
  })

  it('keeps upstream\'s window growth: data read within 4 round trips of the last update doubles the window, up to the maximum', () => {
    // 16 KiB every 8 ms: each frame comes within 4 RTT (40 ms) of the last update, while half a
    // window takes 64 ms; upstream doubles at the first frame and again at the second, and so
    // does the fix. Deciding growth only when half a window is read (go-yamux's way, and this
    // fix's first form) never grows it here
    const { updates, maxCredit, minCredit } = receive({ frames: 200, frame: 16 * 1024, every: 8 })
    expect(maxCredit).toBeGreaterThan(MAX_WINDOW - 2 * 16 * 1024)
    expect(minCredit).toBeGreaterThanOrEqual(INITIAL_WINDOW / 2)
    // 2 growths, then one per half of the 1 MiB window: 3,200 KiB / 512 KiB
    expect(updates).toBeLessThanOrEqual(2 + 7)
  })

  it('leaves the window as it is when data comes slower than 4 round trips after the last update, as upstream does', () => {
    const { maxCredit } = receive({ frames: 100, frame: 16 * 1024, every: 4 * RTT + 1 })
    expect(maxCredit).toBe(INITIAL_WINDOW)
  })
})

/** A stand-in for an upstream class, as a new version might have it. */
class Target {
  field: number = 1
  method (): number { return this.field }
}

function fakeFix (overrides: Partial<StackFix> = {}): StackFix & { applied: number } {
  const fix = {
    fix: 'fake',
    package: '@example/fake',
    version: '9.9.9',
    prototype: Target.prototype,
    methods: ['method'],
    instance: () => new Target(),
    fields: { field: 'number' },
    applied: 0,
    apply: () => { fix.applied++ },
    ...overrides
  }
  return fix
}

describe('the check before patching', () => {
  it('applies a fix whose target has every member it relies on', () => {
    const fix = fakeFix()
    expect(installFix(fix)).toEqual({ fix: 'fake', package: '@example/fake', version: '9.9.9', active: true })
    expect(fix.applied).toBe(1)
  })

  it('leaves a fix out, without throwing, when a method, a field or a value it relies on is missing or of another type, and says which', () => {
    const fix = fakeFix({ methods: ['method', 'renamedMethod'], fields: { field: 'number', renamedField: 'number', method: 'number' }, values: { 'Enum.Member': false } })
    const status = installFix(fix)
    expect(fix.applied).toBe(0)
    expect(status).toEqual({
      fix: 'fake',
      package: '@example/fake',
      version: '9.9.9',
      active: false,
      reason: 'missing method renamedMethod(), field renamedField (number), field method (number), Enum.Member'
    })
  })

  it('leaves a fix out when its target cannot be made to look at, or when applying it throws', () => {
    const unbuildable = installFix(fakeFix({ instance: () => { throw new Error('constructor changed') } }))
    expect(unbuildable.active).toBe(false)
    expect(unbuildable.reason).toContain('constructor changed')
    const failing = installFix(fakeFix({ apply: () => { throw new TypeError('read-only') } }))
    expect(failing).toMatchObject({ active: false, reason: 'could not be applied: read-only' })
  })

  it('warns once per inactive fix, naming the package, its version and what is missing', () => {
    const lines: Array<Record<string, unknown>> = []
    const log = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
    warnInactiveStackFixes(log, [installFix(fakeFix()), installFix(fakeFix({ fields: { gone: 'number' } }))])
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: 40, stackFix: 'fake', package: '@example/fake', version: '9.9.9', reason: 'missing field gone (number)' })
    expect(lines[0]!.msg).toBe('stack fix fake is inactive, @example/fake 9.9.9 runs unpatched: missing field gone (number)')
  })

  it('finds the installed versions, and has both of octet\'s fixes active on them', () => {
    expect(installedVersion('@libp2p/utils')).toMatch(/^\d+\.\d+\.\d+/)
    expect(installedVersion('@example/not-installed')).toBe('unknown')
    expect(stackFixStatus().map(s => [s.fix, s.package, s.version, s.active])).toEqual([
      ['length-prefixed-decoder', '@libp2p/utils', installedVersion('@libp2p/utils'), true],
      ['yamux-window-update', '@chainsafe/libp2p-yamux', installedVersion('@chainsafe/libp2p-yamux'), true]
    ])
  })
})
