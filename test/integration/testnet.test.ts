import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CLI, Cleanup, isAlive, waitFor } from '../helpers/daemon.js'

const cleanup = new Cleanup()
afterEach(async () => { await cleanup.run() })

interface Row { name: string, peerId: string, apiUrl: string, dataDir: string }

/** `octet testnet …` as a child process, its output collected. */
class TestnetProcess {
  stdout = ''
  stderr = ''
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>

  constructor (readonly child: ChildProcess) {
    child.stdout?.on('data', (c: Buffer) => { this.stdout += c.toString() })
    child.stderr?.on('data', (c: Buffer) => { this.stderr += c.toString() })
    this.exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  }

  static start (args: string[]): TestnetProcess {
    const child = spawn(process.execPath, [CLI, 'testnet', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    const testnet = new TestnetProcess(child)
    // a test that fails half-way must not leave the testnet and its daemons behind
    cleanup.add(async () => {
      if (child.exitCode != null || child.signalCode != null) return
      child.kill('SIGINT')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await testnet.exited
      clearTimeout(timer)
    })
    return testnet
  }

  get output (): string {
    return `stderr:\n${this.stderr}\nstdout:\n${this.stdout}`
  }

  /** The NAME / PEER ID / API / DATA DIR table, once printed. */
  rows (): Row[] {
    return [...this.stdout.matchAll(/^(node-\d+)\s+(12D3KooW\S+)\s+(http:\/\/\S+)\s+(\/\S+)$/gm)]
      .map(([, name, peerId, apiUrl, dataDir]) => ({ name: name ?? '', peerId: peerId ?? '', apiUrl: apiUrl ?? '', dataDir: dataDir ?? '' }))
  }
}

/** Processes whose command line names `dir` (daemons of a testnet in it), read from /proc. */
async function processesUsing (dir: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0')
      if (cmdline.some(arg => arg.startsWith(dir))) pids.push(Number(entry))
    } catch {} // gone meanwhile
  }
  return pids
}

const withoutP2p = (addr: string): string => addr.replace(/\/p2p\/[^/]+$/, '')

describe('octet testnet', () => {
  it('starts 6 daemons that find each other through the DHT, even with no connection between them, and stops them all on SIGINT', async () => {
    const dir = await cleanup.tempDir('octet-testnet-')
    const testnet = TestnetProcess.start(['--nodes', '6', '--base-port', '0', '--dir', dir, '--log-level', 'warn'])

    const rows = await waitFor(async () => {
      if (testnet.child.exitCode != null) throw new Error(`testnet exited with ${testnet.child.exitCode}`)
      return testnet.stdout.includes('press Ctrl-C') ? testnet.rows() : undefined
    }, { timeoutMs: 60_000, intervalMs: 100, what: 'the testnet to print its table' })
    expect(testnet.stderr).toContain('DHT: 30/30 lookups succeed')
    expect(testnet.stderr).toMatch(/ready in [\d.]+ s/)
    expect(rows.map(r => r.name)).toEqual(['node-0', 'node-1', 'node-2', 'node-3', 'node-4', 'node-5'])
    expect(new Set(rows.map(r => r.peerId)).size).toBe(6)
    for (const row of rows) expect(row.dataDir).toBe(join(dir, row.name))

    const tokens = new Map(await Promise.all(rows.map(async r => [r.name, (await readFile(join(r.dataDir, 'api.token'), 'utf8')).trim()] as const)))
    const pids = await Promise.all(rows.map(async r => Number((await readFile(join(r.dataDir, 'daemon.lock'), 'utf8')).trim())))
    for (const pid of pids) expect(isAlive(pid)).toBe(true)
    async function api<T> (row: Row, method: string, path: string): Promise<{ status: number, body: T }> {
      const res = await fetch(row.apiUrl + path, { method, headers: { authorization: `Bearer ${tokens.get(row.name) ?? ''}` }, signal: AbortSignal.timeout(20_000) })
      const text = await res.text()
      return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T }
    }
    const connectedTo = async (row: Row, peerId: string): Promise<boolean> =>
      (await api<{ peers: Array<{ peerId: string }> }>(row, 'GET', '/v1/peers')).body.peers.some(p => p.peerId === peerId)

    // A and B: two nodes that are not the bootstrap node (everyone dialled node-0)
    const [a, b] = [rows[1], rows[5]] as [Row, Row]
    const bIdentity = await api<{ peerId: string, listenAddresses: string[] }>(b, 'GET', '/v1/identity')
    expect(bIdentity.body.peerId).toBe(b.peerId)
    const bTcp = bIdentity.body.listenAddresses.map(withoutP2p).find(addr => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/.test(addr))
    expect(bTcp, JSON.stringify(bIdentity.body)).toBeDefined()

    // A hangs up on B (B may redial A on its own: repeat until A has no connection to B)
    await waitFor(async () => {
      const hangUp = await api(a, 'DELETE', `/v1/peers/${b.peerId}`)
      expect([204, 404]).toContain(hangUp.status)
      return await connectedTo(a, b.peerId) ? undefined : true
    }, { what: `${a.name} to have no connection to ${b.name}` })

    // a DHT query, not a connection, tells A where B is
    const found = await api<{ peerId: string, addresses: string[] }>(a, 'GET', `/v1/dht/peers/${b.peerId}`)
    expect(found.status, JSON.stringify(found.body)).toBe(200)
    expect(found.body.peerId).toBe(b.peerId)
    expect(found.body.addresses.map(withoutP2p)).toContain(bTcp)

    // Ctrl-C stops every daemon
    testnet.child.kill('SIGINT')
    const [code, signal] = await testnet.exited
    expect({ code, signal }, testnet.output).toEqual({ code: 0, signal: null })
    expect(testnet.stderr).toMatch(/^stopped$/m)
    for (const pid of pids) expect(isAlive(pid), `daemon pid ${pid}`).toBe(false)
    for (const row of rows) {
      expect(existsSync(join(row.dataDir, 'api.url')), `${row.name}/api.url`).toBe(false)
      expect(existsSync(join(row.dataDir, 'daemon.lock')), `${row.name}/daemon.lock`).toBe(false)
    }
    expect(await processesUsing(dir)).toEqual([])
  })

  it('starts 30 daemons, ready once every node found and was found by 6 others through the DHT, and stops them all on SIGINT', async () => {
    const dir = await cleanup.tempDir('octet-testnet-')
    const startedAt = Date.now()
    const testnet = TestnetProcess.start(['--nodes', '30', '--base-port', '0', '--dir', dir, '--log-level', 'warn'])
    const rows = await waitFor(async () => {
      if (testnet.child.exitCode != null) throw new Error(`testnet exited with ${testnet.child.exitCode}:\n${testnet.output}`)
      return testnet.stdout.includes('press Ctrl-C') ? testnet.rows() : undefined
    }, { timeoutMs: 400_000, intervalMs: 250, what: 'the 30-node testnet to be ready' }).catch((err: Error) => {
      // how far it got: the progress lines say whether starting or the lookups took the time
      throw new Error(`${err.message}\n${testnet.stderr.split('\n').filter(l => !/^\s+\[\d+\/30\]/.test(l)).slice(-8).join('\n')}`)
    })
    const readyMs = Date.now() - startedAt
    // rounds at offsets 1, 2, 4, 8, 15, 16 along the ring: 6 × 30 lookups
    expect(testnet.stderr).toContain('DHT: 180/180 lookups succeed')
    expect(testnet.stderr).toMatch(/ready in [\d.]+ s: every node found 6 others and was found by 6 others/)
    expect(rows).toHaveLength(30)
    const pids = await Promise.all(rows.map(async r => Number((await readFile(join(r.dataDir, 'daemon.lock'), 'utf8')).trim())))
    for (const pid of pids) expect(isAlive(pid)).toBe(true)
    console.log(`30-node testnet: ${testnet.stderr.match(/ready in [\d.]+ s/)?.[0] ?? '?'} (${readyMs} ms from spawn)`)

    testnet.child.kill('SIGINT')
    const [code, signal] = await testnet.exited
    expect({ code, signal }, testnet.output).toEqual({ code: 0, signal: null })
    for (const pid of pids) expect(isAlive(pid), `daemon pid ${pid}`).toBe(false)
    expect(await processesUsing(dir)).toEqual([])
    // the testnet's own readiness deadline (60 s + 90 s for 180 lookups on 2 cores) decides
    // first; this is only the outer bound, for a machine busy with other work
  }, 450_000)

  it('exits non-zero naming the node that failed to start, and leaves no daemon running', async () => {
    const dir = await cleanup.tempDir('octet-testnet-')
    // node-1's API port is base + 1*3 + 2: hold it, and make sure the others are free
    const { base, server } = await portRangeWithBusyPort(6, 5)
    cleanup.add(async () => { await new Promise<void>(resolve => server.close(() => { resolve() })) })

    const testnet = TestnetProcess.start(['--nodes', '2', '--base-port', String(base), '--dir', dir, '--log-level', 'warn'])
    const [code] = await testnet.exited
    expect(code, testnet.output).not.toBe(0)
    expect(code, testnet.output).not.toBeNull()
    const errorLines = testnet.stderr.split('\n').filter(line => line.startsWith('octet: '))
    expect(errorLines, testnet.output).toHaveLength(1)
    expect(errorLines[0]).toContain('node-1')
    expect(errorLines[0]).toContain(String(base + 5))
    expect(testnet.stdout).not.toContain('press Ctrl-C')
    // node-0 had started: it was stopped, cleanly
    expect(testnet.stderr).toContain('node-0 up')
    expect(await processesUsing(dir)).toEqual([])
    expect(existsSync(join(dir, 'node-0', 'daemon.lock'))).toBe(false)
    expect(existsSync(join(dir, 'node-0', 'api.url'))).toBe(false)
  })
})

/**
 * A base port whose `count` ports are free, but for base + `busy`, which is held by the
 * returned server. Searched below the ephemeral range (32768+), where port-0 binds of other
 * processes cannot take one in between.
 */
async function portRangeWithBusyPort (count: number, busy: number): Promise<{ base: number, server: Server }> {
  const listen = async (port: number): Promise<Server | undefined> => {
    const server = createServer()
    return await new Promise(resolve => {
      server.once('error', () => { resolve(undefined) })
      server.listen(port, '127.0.0.1', () => { resolve(server) })
    })
  }
  const close = async (server: Server): Promise<void> => { await new Promise<void>(resolve => server.close(() => { resolve() })) }
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 10_000)
    const servers: Server[] = []
    for (let i = 0; i < count; i++) {
      const server = await listen(base + i)
      if (server == null) break
      servers.push(server)
    }
    const ok = servers.length === count
    for (const [i, server] of servers.entries()) {
      if (ok && i === busy) continue
      await close(server)
    }
    if (ok) return { base, server: servers[busy] as Server }
  }
  throw new Error('no free port range found')
}
