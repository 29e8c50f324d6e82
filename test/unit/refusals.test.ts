import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Counters } from '../../src/messaging/stats.js'
import { Refusals } from '../../src/refusals.js'

interface Line { msg: string, counter?: string, repeats?: number, peers?: number, peer?: string }

function setup (interval = 1_000): { refusals: Refusals, counters: Counters, lines: Line[], clock: { now: number } } {
  const lines: Line[] = []
  const clock = { now: 0 }
  const log = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as Line) } })
  const counters = new Counters()
  return { refusals: new Refusals(counters, log, interval, () => clock.now), counters, lines, clock }
}

describe('Refusals: every refusal counted, a flood logged as a few lines with counts', () => {
  afterEach(() => { vi.useRealTimers() })

  it('logs the first refusal of a kind in full and the repeats of an interval as one line with their count', () => {
    vi.useFakeTimers()
    const { refusals, counters, lines, clock } = setup()
    for (let i = 0; i < 10_000; i++) {
      refusals.refuse({ counter: 'dm.rejected.FORGED_SENDER', peer: `peer-${i % 3}`, fields: { peer: `peer-${i % 3}`, id: i }, message: 'refused an inbound envelope' })
    }
    refusals.refuse({ counter: 'dm.rejected.RATE_LIMITED', peer: 'peer-0', fields: { peer: 'peer-0' }, message: 'refused an inbound envelope' })
    expect(counters.snapshot()).toEqual({ 'dm.rejected.FORGED_SENDER': 10_000, 'dm.rejected.RATE_LIMITED': 1 })
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatchObject({ msg: 'refused an inbound envelope', counter: 'dm.rejected.FORGED_SENDER', peer: 'peer-0' })

    // the interval ends: the repeats are one line, naming how many and from how many peers
    clock.now = 1_000
    vi.advanceTimersByTime(1_000)
    expect(lines).toHaveLength(3)
    expect(lines[2]).toMatchObject({ counter: 'dm.rejected.FORGED_SENDER', repeats: 9_999, peers: 3 })
    expect(lines[2]!.msg).toMatch(/^refused an inbound envelope: 9999 more/)

    // a later refusal of the same kind starts a new interval, logged in full again
    clock.now = 5_000
    refusals.refuse({ counter: 'dm.rejected.FORGED_SENDER', message: 'refused an inbound envelope' })
    expect(lines).toHaveLength(4)
    expect(lines[3]).toMatchObject({ msg: 'refused an inbound envelope', counter: 'dm.rejected.FORGED_SENDER' })
    expect(lines[3]!.repeats).toBeUndefined()
  })

  it('a steady flood is two lines per kind and interval, however fast it comes', () => {
    vi.useFakeTimers()
    const { refusals, lines, clock } = setup()
    // 2,000 a second for 20 intervals
    for (let ms = 0; ms < 20_000; ms++) {
      clock.now = ms
      vi.advanceTimersByTime(1)
      refusals.refuse({ counter: 'mailbox.store.refused.NOT_CLOSEST', level: 'debug', message: 'refused a mailbox store' })
      refusals.refuse({ counter: 'mailbox.store.refused.NOT_CLOSEST', level: 'debug', message: 'refused a mailbox store' })
    }
    refusals.flush()
    expect(lines.length).toBeLessThanOrEqual(2 * 20 + 2)
    const counted = lines.reduce((sum, line) => sum + 1 + (line.repeats ?? 0) - (line.repeats != null ? 1 : 0), 0)
    expect(counted).toBe(40_000)
  })

  it('flush() writes what was not logged yet, and stops its timer', () => {
    vi.useFakeTimers()
    const { refusals, lines } = setup()
    refusals.refuse({ counter: 'prekeys.rejected.TIMEOUT', level: 'info', message: 'prekey stream failed' })
    refusals.refuse({ counter: 'prekeys.rejected.TIMEOUT', level: 'info', message: 'prekey stream failed' })
    refusals.flush()
    expect(lines.map(l => l.repeats)).toEqual([undefined, 1])
    expect(vi.getTimerCount()).toBe(0)
  })
})
