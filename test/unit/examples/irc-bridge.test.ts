import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { ircTextBytes, isCtcp, splitBytes, toIrcLines, toOctetText } from '../../../examples/irc-bridge/format.js'
import { parseLine } from '../../../examples/irc-bridge/irc.js'
import { BridgeState, StateError } from '../../../examples/irc-bridge/state.js'

/** The pure parts of examples/irc-bridge; the whole of it runs in test/integration/irc-bridge.test.ts. */

const bytes = (s: string): number => Buffer.byteLength(s)

describe('irc-bridge format', () => {
  it('cuts at the last space that fits, else between characters, never inside one', () => {
    expect(splitBytes('one two three', 7)).toEqual(['one two', 'three'])
    expect(splitBytes('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij'])
    // é is 2 bytes, 😀 is 4 (two UTF-16 units): a part ends before a character that does not fit
    expect(splitBytes('éééé', 5)).toEqual(['éé', 'éé'])
    expect(splitBytes('😀😀x', 5)).toEqual(['😀', '😀x'])
    expect(splitBytes('short', 100)).toEqual(['short'])
  })

  it('keeps every part within the limit and loses nothing but the spaces it cut at (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.integer({ min: 4, max: 60 }), (text, max) => {
      const parts = splitBytes(text, max)
      for (const part of parts) expect(bytes(part)).toBeLessThanOrEqual(max)
      expect(parts.join('').replace(/ /g, '')).toBe(text.replace(/ /g, ''))
      // no code point is split: every part is well-formed UTF-16
      for (const part of parts) expect(part).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/)
    }))
  })

  it('makes IRC lines of an octet text: one per line, blank lines and control characters gone, each with the name', () => {
    expect(toIrcLines('bob', 'first\r\nsecond\n\n  \nthird\u0000\u0007', 400)).toEqual(['<bob> first', '<bob> second', '<bob> third'])
    expect(toIrcLines('two words', 'x', 400)).toEqual(['<two_words> x'])
    // IRC's own formatting (bold \x02, colour \x03) stays
    expect(toIrcLines('bob', '\x02bold\x02', 400)).toEqual(['<bob> \x02bold\x02'])
    const lines = toIrcLines('bob', 'word '.repeat(300).trim(), ircTextBytes('#octet'))
    expect(lines.length).toBeGreaterThan(3)
    for (const line of lines) expect(bytes(`:octet-bridge!~octet-bri@a.host.name PRIVMSG #octet :${line}\r\n`)).toBeLessThanOrEqual(512)
  })

  it('makes octet texts of IRC lines: <nick> text, * nick for /me, other CTCP left out', () => {
    expect(toOctetText('tester', 'hello')).toBe('<tester> hello')
    expect(toOctetText('tester', '\x01ACTION waves\x01')).toBe('* tester waves')
    expect(isCtcp('\x01VERSION\x01')).toBe(true)
    expect(isCtcp('\x01ACTION waves\x01')).toBe(false)
    expect(isCtcp('plain')).toBe(false)
  })
})

describe('irc-bridge IRC lines', () => {
  it.each([
    [':nick!user@host PRIVMSG #octet :hello there', { nick: 'nick', command: 'PRIVMSG', params: ['#octet', 'hello there'] }],
    ['PING :irc.example', { command: 'PING', params: ['irc.example'] }],
    [':irc.example 001 octet-bridge :Welcome', { nick: 'irc.example', command: '001', params: ['octet-bridge', 'Welcome'] }],
    ['@time=2026-01-01T00:00:00Z :a!b@c JOIN #octet', { nick: 'a', command: 'JOIN', params: ['#octet'] }],
    [':a!b@c privmsg #octet ::-) colon', { nick: 'a', command: 'PRIVMSG', params: ['#octet', ':-) colon'] }],
    [':only-prefix', undefined]
  ])('parses %j', (line, expected) => {
    expect(parseLine(line)).toEqual(expected)
  })
})

describe('irc-bridge state file', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const dir of dirs) await rm(dir, { recursive: true, force: true }) })
  const group = 'a'.repeat(32)

  it('keeps the cursor and the waiting lines across loads, written atomically', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'octet-bridge-state-'))
    dirs.push(dir)
    const path = join(dir, 'state.json')
    const state = await BridgeState.load(path, group)
    expect(state.lastEventId).toBeUndefined()
    const first = await state.enqueue('<tester> one')
    await state.enqueue('<tester> two')
    await state.handled(41, true)
    await state.sent(first.key)
    await state.handled(42, false)
    await state.flush()
    const again = await BridgeState.load(path, group)
    expect(again.lastEventId).toBe(42)
    expect(again.pending.map(p => p.text)).toEqual(['<tester> two'])
    // the key a line was queued under stays with it: a resend is recognised by the daemon
    expect(again.pending[0]?.key).toBe(state.pending[0]?.key)
    expect(await readdir(dir)).toEqual(['state.json'])
  })

  it('refuses the state of another group, or a file that is not one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'octet-bridge-state-'))
    dirs.push(dir)
    const path = join(dir, 'state.json')
    await (await BridgeState.load(path, group)).save()
    await expect(BridgeState.load(path, 'b'.repeat(32))).rejects.toBeInstanceOf(StateError)
    await writeFile(path, '{"something":"else"}')
    await expect(BridgeState.load(path, group)).rejects.toBeInstanceOf(StateError)
  })
})
