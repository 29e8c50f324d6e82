import { chmod, cp, mkdir, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MessageRecord } from '../../src/messaging/index.js'
import { Cleanup, DaemonProcess, runCli, waitFor, type CliResult } from '../helpers/daemon.js'

/**
 * Damaged state is never silent: real daemons build a history, and copies of
 * their data directories are damaged the ways disks and people damage them
 * (LevelDB's CURRENT, MANIFEST, write-ahead log and tables; identity.key;
 * db/state). Each copy is refused at start with one line and exit code 65,
 * `octet doctor` reports it, `octet doctor --repair` recovers what LevelDB can
 * read and says what was lost, and the daemon then starts on what is left.
 */
const MESSAGES = 30
const EXIT_STATE_DAMAGED = 65

interface RepairReport { repaired: boolean, before?: Record<string, number>, after: Record<string, number>, lost: Record<string, number>, marker?: { counts: Record<string, number> } }

describe('damaged state (daemon processes)', () => {
  const cleanup = new Cleanup()
  /** A's data directory with its messages still in LevelDB's write-ahead log (one session) */
  let inLog: string
  /** the same after a second session: LevelDB turned the log into a table at that start */
  let inTables: string
  let peerB = ''

  beforeAll(async () => {
    const dirA = await cleanup.tempDir()
    const b = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    const a = await DaemonProcess.start({ dataDir: dirA, bootstrap: [b.tcpAddress] }, cleanup)
    peerB = b.info.peerId
    const ids: string[] = []
    for (let i = 0; i < MESSAGES; i++) {
      const { status, body } = await a.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: peerB, text: `message ${i}` })
      expect(status).toBe(202)
      ids.push(body.message.id)
    }
    await waitFor(async () => {
      const statuses = await Promise.all(ids.map(async id => (await a.api<{ message: MessageRecord }>('GET', `/v1/messages/${id}`)).body.message.status))
      return statuses.every(s => s === 'delivered') ? true : undefined
    }, { timeoutMs: 30_000, what: 'all delivered' })
    expect(await Promise.all([a.stop(), b.stop()])).toEqual([0, 0])
    inLog = await copyOf(dirA)
    const again = await DaemonProcess.start({ dataDir: dirA }, cleanup)
    expect(await again.stop()).toBe(0)
    inTables = dirA
    expect((await readdir(join(inTables, 'db', 'state'))).some(f => f.endsWith('.ldb'))).toBe(true)
  })
  afterAll(async () => { await cleanup.run() })

  const copyOf = async (dir: string): Promise<string> => {
    const copy = await cleanup.tempDir()
    await cp(dir, copy, { recursive: true })
    return copy
  }
  const stateFile = async (dir: string, test: (name: string) => boolean): Promise<string> => {
    const names = (await readdir(join(dir, 'db', 'state'))).filter(test)
    // the largest of them: the one with the messages
    const sized = await Promise.all(names.map(async name => ({ name, size: (await stat(join(dir, 'db', 'state', name))).size })))
    const largest = sized.sort((x, y) => y.size - x.size)[0]
    if (largest == null) throw new Error(`no such file in ${dir}/db/state`)
    return join(dir, 'db', 'state', largest.name)
  }
  /** A daemon start that must be refused: its exit code and its one line on stderr. */
  const refusedStart = async (dir: string): Promise<{ code: number | null, line: string }> => {
    const result = await runCli(['daemon', '--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--log-level', 'warn'])
    const line = result.stderr.trimEnd()
    expect(line.split('\n')).toHaveLength(1)
    return { code: result.code, line }
  }
  const doctor = async (dir: string, ...args: string[]): Promise<CliResult> => await runCli(['doctor', '--data-dir', dir, ...args])
  const repair = async (dir: string): Promise<RepairReport> => {
    const result = await doctor(dir, '--repair', '--json')
    expect(result.code, result.stderr).toBe(0)
    return JSON.parse(result.stdout) as RepairReport
  }
  const history = async (dir: string): Promise<{ peerId: string, messages: MessageRecord[] }> => {
    const daemon = await DaemonProcess.start({ dataDir: dir }, cleanup)
    const { status, body } = await daemon.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${peerB}/messages?limit=1000`)
    expect(status).toBe(200)
    await daemon.stop()
    return { peerId: daemon.info.peerId, messages: body.messages }
  }

  /** Refused with one line naming `what` and the way out, reported by doctor; repaired; what is left starts. */
  const refusedThenRepaired = async (dir: string, what: RegExp): Promise<{ report: RepairReport, left: MessageRecord[] }> => {
    const start = await refusedStart(dir)
    expect(start.code).toBe(EXIT_STATE_DAMAGED)
    expect(start.line).toMatch(what)
    expect(start.line).toContain('octet doctor --repair')
    // refused again on a second try: the damage is not forgotten by having looked at it
    expect((await refusedStart(dir)).code).toBe(EXIT_STATE_DAMAGED)

    const report = await doctor(dir)
    expect(report.code).toBe(EXIT_STATE_DAMAGED)
    expect(report.stdout).toMatch(what)

    const repaired = await repair(dir)
    expect(repaired.repaired).toBe(true)
    expect((await doctor(dir)).code).toBe(0)
    const { messages } = await history(dir)
    // what doctor says is left is what the daemon shows; what it says is lost is the rest
    expect(repaired.after.messages ?? 0).toBe(messages.length)
    expect(repaired.lost.messages ?? 0).toBe(MESSAGES - messages.length)
    return { report: repaired, left: messages }
  }

  it('LevelDB\'s CURRENT deleted: refused, repaired with nothing lost', async () => {
    const dir = await copyOf(inTables)
    await rm(join(dir, 'db', 'state', 'CURRENT'))
    const { left } = await refusedThenRepaired(dir, /CURRENT file is missing/)
    expect(left.map(m => m.text)).toEqual(Array.from({ length: MESSAGES }, (_, i) => `message ${i}`))
  })

  it('the MANIFEST deleted: refused, repaired with nothing lost', async () => {
    const dir = await copyOf(inTables)
    await rm(await stateFile(dir, name => name.startsWith('MANIFEST-')))
    const { left } = await refusedThenRepaired(dir, /MANIFEST-\d+: No such file/)
    expect(left).toHaveLength(MESSAGES)
  })

  it('the table with the messages deleted: refused; after repair doctor names every message lost', async () => {
    const dir = await copyOf(inTables)
    await rm(await stateFile(dir, name => name.endsWith('.ldb')))
    const { report, left } = await refusedThenRepaired(dir, /missing files/)
    expect(left).toHaveLength(0)
    expect(report.lost.messages).toBe(MESSAGES)
  })

  it('the table with the messages truncated: refused at start, not at the first read', async () => {
    const dir = await copyOf(inTables)
    const table = await stateFile(dir, name => name.endsWith('.ldb'))
    await truncate(table, Math.floor((await stat(table)).size / 2))
    await refusedThenRepaired(dir, /LevelDB's manifest says/)
  })

  it('the write-ahead log truncated: refused as rolled back; repair keeps the first part and counts the rest as lost', async () => {
    const dir = await copyOf(inLog)
    const log = await stateFile(dir, name => name.endsWith('.log'))
    await truncate(log, Math.floor((await stat(log)).size * 0.6))
    const { left } = await refusedThenRepaired(dir, /went back from checkpoint/)
    expect(left.length).toBeGreaterThan(0)
    expect(left.length).toBeLessThan(MESSAGES)
  })

  it("libp2p's datastore damaged (peers and DHT records, learnt again): doctor reports it, the start repairs it with a warning, no message lost", async () => {
    const dir = await copyOf(inTables)
    await rm(join(dir, 'db', 'libp2p', 'CURRENT'))
    const report = await doctor(dir)
    expect(report.stdout).toMatch(/libp2p's data\s+damaged/)
    const daemon = await DaemonProcess.start({ dataDir: dir }, cleanup)
    expect(daemon.output.join('')).toContain("libp2p's datastore (known peers and DHT records, learnt again from the network) was damaged; repaired it")
    const { status, body } = await daemon.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${peerB}/messages?limit=1000`)
    expect(status).toBe(200)
    expect(body.messages).toHaveLength(MESSAGES)
    await daemon.stop()
    expect((await doctor(dir)).stdout).not.toMatch(/libp2p's data/)
  })

  it('identity.key deleted: refused, and doctor --repair does not adopt the state for a new key', async () => {
    const dir = await copyOf(inTables)
    await rm(join(dir, 'identity.key'))
    const start = await refusedStart(dir)
    expect(start.code).toBe(EXIT_STATE_DAMAGED)
    expect(start.line).toMatch(/identity.key is missing/)
    expect((await doctor(dir)).code).toBe(EXIT_STATE_DAMAGED)
    expect((await doctor(dir, '--repair')).code).toBe(EXIT_STATE_DAMAGED)
    await expect(stat(join(dir, 'identity.key'))).rejects.toThrow()
  })

  it('identity.key of another node: refused, not adopted', async () => {
    const dir = await copyOf(inTables)
    await writeFile(join(dir, 'identity.key'), privateKeyToProtobuf(await generateKeyPair('Ed25519')), { mode: 0o600 })
    const start = await refusedStart(dir)
    expect(start.code).toBe(EXIT_STATE_DAMAGED)
    expect(start.line).toMatch(/but the state belongs to/)
    expect((await doctor(dir, '--repair')).code).toBe(EXIT_STATE_DAMAGED)
  })

  it('db/state emptied next to the identity: refused; doctor --repair starts it over empty under the same PeerId', async () => {
    const dir = await copyOf(inTables)
    const { peerId } = JSON.parse(await readFile(join(dir, 'state.marker'), 'utf8')) as { peerId: string }
    await rm(join(dir, 'db', 'state'), { recursive: true })
    await mkdir(join(dir, 'db', 'state'))
    const { report, left } = await refusedThenRepaired(dir, /missing or empty .* not created fresh/)
    expect(left).toHaveLength(0)
    expect(report.lost.messages).toBe(MESSAGES)
    expect((await history(dir)).peerId).toBe(peerId)
  })

  it('a daemon SIGKILLed right after writes starts again without a word about damage', async () => {
    const dir = await copyOf(inTables)
    const daemon = await DaemonProcess.start({ dataDir: dir }, cleanup)
    for (let i = 0; i < 20; i++) {
      expect((await daemon.api('POST', '/v1/messages', { to: peerB, text: `before the kill ${i}` })).status).toBe(202)
    }
    await daemon.kill()
    const { messages } = await history(dir)
    expect(messages).toHaveLength(MESSAGES + 20)
    const report = await doctor(dir)
    expect(report.code, report.stdout + report.stderr).toBe(0)
  })

  it('an existing data directory open to others is tightened, with a warning; a new one is private from the start', async () => {
    const dir = await copyOf(inTables)
    await chmod(dir, 0o755)
    await chmod(join(dir, 'db'), 0o755)
    const table = await stateFile(dir, name => name.endsWith('.ldb'))
    await chmod(table, 0o644)
    const daemon = await DaemonProcess.start({ dataDir: dir }, cleanup)
    await daemon.stop()
    expect(daemon.output.join('')).toContain('the data directory was open to other users')
    const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777
    expect([await modeOf(dir), await modeOf(join(dir, 'db')), await modeOf(table)]).toEqual([0o700, 0o700, 0o600])

    const fresh = join(await cleanup.tempDir(), 'new')
    const first = await DaemonProcess.start({ dataDir: fresh }, cleanup)
    await first.stop()
    expect(first.output.join('')).not.toContain('open to other users')
    const files = (await readdir(join(fresh, 'db', 'state'))).map(name => join(fresh, 'db', 'state', name))
    expect(await modeOf(join(fresh, 'db'))).toBe(0o700)
    expect(await Promise.all([...files, join(fresh, 'state.marker')].map(modeOf))).toEqual([...files, 'marker'].map(() => 0o600))
  })
})
