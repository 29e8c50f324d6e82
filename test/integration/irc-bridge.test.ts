// The IRC bridge (examples/irc-bridge) end to end, every part real: ngircd on 127.0.0.1,
// two `octet daemon` processes in one group, the bridge as a process on A's data
// directory, and a test user on IRC speaking raw protocol. Both directions, the nick
// prefixes, no echo, and restarts of the daemon, of the IRC server and of the bridge in
// the middle of streams in both directions: every message arrives once, in order.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { GroupMessageRecord, GroupView } from '../../src/groups/index.js'
import { Cleanup, DaemonProcess, ROOT, until, waitFor } from '../helpers/daemon.js'
import { IrcServer, IrcUser, ngircdUnavailable } from '../helpers/irc.js'

const BRIDGE = join(ROOT, 'dist', 'examples', 'irc-bridge', 'main.js')
const CHANNEL = '#octet'
const unavailable = ngircdUnavailable()

/** The bridge as a process, its log lines kept. */
class Bridge {
  readonly lines: string[] = []
  private child: ChildProcess | undefined

  constructor (private readonly args: string[]) {}

  start (): void {
    const child = spawn(process.execPath, [BRIDGE, ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    let partial = ''
    const take = (c: Buffer): void => {
      partial += c.toString()
      const parts = partial.split('\n')
      partial = parts.pop() ?? ''
      this.lines.push(...parts)
    }
    child.stdout?.on('data', take)
    child.stderr?.on('data', take)
  }

  count (pattern: RegExp): number {
    return this.lines.filter(line => pattern.test(line)).length
  }

  /** Until the log has `pattern` more than `before` times. */
  async logged (pattern: RegExp, before = 0, timeoutMs = 30_000): Promise<void> {
    await until(`bridge log ${pattern}`, () => this.count(pattern) > before, timeoutMs).catch(err => {
      throw new Error(`${(err as Error).message}\n${this.lines.join('\n')}`)
    })
  }

  /** SIGTERM; resolves with the exit code. Idempotent. */
  async stop (): Promise<number | null> {
    const child = this.child
    if (child == null || child.exitCode != null || child.signalCode != null) return child?.exitCode ?? null
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const timer = setTimeout(() => {
      this.lines.push('[test] the bridge did not exit 10 s after SIGTERM: SIGKILL')
      child.kill('SIGKILL')
    }, 10_000)
    const [code] = await exited as [number | null]
    clearTimeout(timer)
    return code
  }
}

describe.skipIf(unavailable != null)(`IRC bridge between an octet group and ngircd${unavailable != null ? ` (skipped: ${unavailable})` : ''}`, () => {
  const cleanup = new Cleanup()
  let irc: IrcServer
  let a: DaemonProcess
  let b: DaemonProcess
  let groupId: string
  let bridge: Bridge
  let stateFile: string
  const user = new IrcUser('tester', CHANNEL)

  const group = async (node: DaemonProcess): Promise<GroupView | undefined> => {
    const res = await node.api<{ group: GroupView }>('GET', `/v1/groups/${groupId}`)
    return res.status === 200 ? res.body.group : undefined
  }
  const history = async (node: DaemonProcess): Promise<GroupMessageRecord[]> =>
    (await node.api<{ messages: GroupMessageRecord[] }>('GET', `/v1/groups/${groupId}/messages?limit=1000`)).body.messages
  const post = async (node: DaemonProcess, text: string): Promise<void> => {
    expect((await node.api('POST', `/v1/groups/${groupId}/messages`, { text })).status).toBe(202)
  }
  /** What the bridge said on IRC. */
  const fromBridge = (): string[] => user.heard.filter(h => h.nick === 'octet-bridge').map(h => h.text)
  /** What B reads of the bridge's node that came from IRC (not A's probes and own texts). */
  const relayedToB = async (): Promise<string[]> => (await history(b)).filter(m => m.author === a.peerId && /^(<tester> |\* tester )/.test(m.text)).map(m => m.text)

  beforeAll(async () => {
    irc = await IrcServer.start(cleanup)
    a = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    b = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [a.tcpAddress] }, cleanup)
    const created = await a.api<{ group: GroupView }>('POST', '/v1/groups', { name: 'irc' })
    expect(created.status).toBe(201)
    groupId = created.body.group.id
    expect((await a.api('POST', `/v1/groups/${groupId}/invites`, { peerId: b.peerId })).status).toBe(202)
    await until('the invite at B', async () => (await group(b))?.state === 'invited', 20_000)
    expect((await b.api('POST', `/v1/groups/${groupId}/accept`)).status).toBe(202)
    await until('B joined at both', async () => (await group(a))?.members.includes(b.peerId) === true && (await group(b))?.state === 'joined', 20_000)
    // the gossip mesh forms in the background: a message each way before the bridge starts
    // (which takes only later events), sent again until one arrives
    for (const [from, to] of [[b, a], [a, b]] as const) {
      await waitFor(async () => {
        if ((await history(to)).some(m => m.author === from.peerId)) return true
        await post(from, 'mesh probe')
        return undefined
      }, { what: 'a probe message', timeoutMs: 30_000, intervalMs: 1_000 })
    }
    // A knows B by name: the bridge says B's messages as <bob>
    expect((await a.api('POST', '/v1/contacts', { peerId: b.peerId, name: 'bob' })).status).toBe(201)

    await user.connect(irc.port)
    cleanup.add(async () => { user.close() })
    stateFile = join(await cleanup.tempDir('octet-bridge-'), 'state.json')
    bridge = new Bridge(['--data-dir', a.options.dataDir, '--group', groupId, '--irc', `127.0.0.1:${irc.port}`, '--channel', CHANNEL, '--nick', 'octet-bridge', '--state-file', stateFile])
    cleanup.add(async () => { await bridge.stop() })
    bridge.start()
    await bridge.logged(/irc: joined/)
    await bridge.logged(/octet: event stream open/)
  }, 120_000)
  afterEach(ctx => {
    // a failure says what the bridge logged and what each side saw
    if (ctx.task.result?.state === 'fail') console.log(`bridge log:\n${bridge?.lines.join('\n')}\nIRC user heard:\n${user.heard.map(h => `${h.nick}: ${h.text}`).join('\n')}`)
  })
  afterAll(async () => { await cleanup.run() }, 60_000)

  it('relays both ways with nick prefixes: long texts split to IRC lines, newlines to several lines, no echo', async () => {
    await post(b, 'hello from bob')
    await until('the first line on IRC', () => fromBridge().length === 1, 20_000)
    expect(fromBridge()).toEqual(['<bob> hello from bob'])

    await post(b, 'first line\nsecond line\n\n')
    await until('two lines more', () => fromBridge().length === 3, 20_000)
    expect(fromBridge().slice(1)).toEqual(['<bob> first line', '<bob> second line'])

    const long = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ')
    await post(b, long)
    await until('the long text', () => fromBridge().join('\n').includes('word199'), 20_000)
    const parts = fromBridge().slice(3)
    expect(parts.length).toBeGreaterThan(2)
    for (const part of parts) {
      expect(part.startsWith('<bob> ')).toBe(true)
      // what the server relays to the channel stays within IRC's 512 bytes
      expect(Buffer.byteLength(`:octet-bridge!~octet-bri@127.0.0.1 PRIVMSG ${CHANNEL} :${part}\r\n`)).toBeLessThanOrEqual(512)
    }
    expect(parts.map(p => p.slice('<bob> '.length)).join(' ')).toBe(long)

    user.say('hi from irc')
    user.say('\x01ACTION waves\x01')
    await until('both at B', async () => (await relayedToB()).length >= 2, 20_000)
    expect(await relayedToB()).toEqual(['<tester> hi from irc', '* tester waves'])

    // no echo: what the bridge posted for IRC, and what A's own user writes, are not said on
    // IRC; B's next message is the next line there
    await post(a, 'written at A itself')
    await post(b, 'sentinel')
    await until('the sentinel', () => fromBridge().includes('<bob> sentinel'), 20_000)
    expect(fromBridge().length).toBe(3 + parts.length + 1)
    expect(user.heard.filter(h => h.nick !== 'octet-bridge')).toEqual([])
    expect(await relayedToB()).toHaveLength(2)
  })

  it('a group send retried with the same Idempotency-Key makes one message (what the bridge relies on)', async () => {
    const key = { 'idempotency-key': `retry-${Date.now()}` }
    const first = await a.api<{ message: GroupMessageRecord }>('POST', `/v1/groups/${groupId}/messages`, { text: 'once only' }, key)
    const again = await a.api<{ message: GroupMessageRecord }>('POST', `/v1/groups/${groupId}/messages`, { text: 'once only' }, key)
    expect(first.status).toBe(202)
    expect(again.status).toBe(202)
    expect(again.body.message.id).toBe(first.body.message.id)
    const conflict = await a.api<{ error: { code: string } }>('POST', `/v1/groups/${groupId}/messages`, { text: 'another text' }, key)
    expect(conflict.status).toBe(409)
    expect((await history(a)).filter(m => m.text === 'once only')).toHaveLength(1)
  })

  it('survives restarts of the daemon, the IRC server and the bridge mid-stream: every message once, in order', async () => {
    const seenBefore = fromBridge().length
    const toBBefore = (await relayedToB()).length
    const octetLine = (i: number): string => `<bob> octet ${i}`
    const ircText = (i: number): string => `<tester> irc ${i}`
    let o = 0
    let i = 0
    const octetBurst = async (n: number): Promise<void> => { for (let k = 0; k < n; k++) await post(b, `octet ${++o}`) }
    const ircBurst = (n: number): void => { for (let k = 0; k < n; k++) user.say(`irc ${++i}`) }

    // 1. both directions flowing, then the daemon of the bridge stops in the middle
    const bridgeJoins = bridge.count(/irc: joined/)
    await octetBurst(3)
    ircBurst(3)
    await until('some relayed', () => fromBridge().length > seenBefore, 20_000)
    const failuresBefore = bridge.count(/octet: cannot send/)
    const listen = a.info.listenAddresses.filter(addr => addr.includes('/tcp/')).map(addr => addr.replace(/\/p2p\/.*$/, ''))
    await a.stop()
    // while A is down: IRC lines wait in the bridge, B's messages wait at B
    ircBurst(4)
    await bridge.logged(/octet: cannot send/, failuresBefore)
    await octetBurst(4)
    a = await a.restart(cleanup, { listen })
    await until('the lines of the outage at B', async () => (await relayedToB()).length >= toBBefore + i, 60_000)
    await until('B\'s messages of the outage on IRC', () => fromBridge().includes(octetLine(o)), 60_000)

    // 2. the IRC server restarts; the bridge and the user come back
    await irc.stop()
    await irc.run()
    await user.connect(irc.port)
    await bridge.logged(/irc: joined/, bridgeJoins)
    await octetBurst(2)
    ircBurst(2)

    // 3. the bridge restarts while B writes: it resumes after the last line it said
    // (IRC keeps no history: what is said while the bridge is away is not for it to relay,
    // so the lines said so far reach B before it stops)
    await until('the bridge relayed before its stop', () => fromBridge().includes(octetLine(o)), 30_000)
    await until('the IRC lines at B before the stop', async () => (await relayedToB()).length >= toBBefore + i, 30_000)
    expect(await bridge.stop()).toBe(0)
    await octetBurst(3)
    const stopped = bridge.lines.length
    const [opened, joined] = [bridge.count(/octet: event stream open/), bridge.count(/irc: joined/)]
    bridge.start()
    await bridge.logged(/octet: event stream open/, opened)
    await bridge.logged(/irc: joined/, joined)
    ircBurst(2)

    const expectedIrc = Array.from({ length: o }, (_, k) => octetLine(k + 1))
    const expectedB = Array.from({ length: i }, (_, k) => ircText(k + 1))
    await until('every octet message on IRC', () => fromBridge().filter(t => t.startsWith('<bob> octet ')).length >= o, 60_000)
    await until('every IRC line at B', async () => (await relayedToB()).filter(t => t.startsWith('<tester> irc ')).length >= i, 60_000)
    // settled: the bridge has nothing waiting (B may have a line before the bridge has the
    // daemon's answer to it on disk), so nothing more comes
    await waitFor(async () => {
      const state = JSON.parse(await readFile(stateFile, 'utf8')) as { pending: unknown[] }
      return state.pending.length === 0 ? true : undefined
    }, { what: 'no line waiting in the bridge\'s state', timeoutMs: 30_000 })
    expect(fromBridge().filter(t => t.startsWith('<bob> octet '))).toEqual(expectedIrc)
    expect((await relayedToB()).filter(t => t.startsWith('<tester> irc '))).toEqual(expectedB)
    // the restarted bridge resumed from the cursor it kept, not from the newest event
    expect(bridge.lines.slice(stopped).join('\n')).toMatch(/bridge starting .*resumeAfter=\d+/)
  })
})
