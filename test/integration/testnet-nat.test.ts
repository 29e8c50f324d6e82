import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { chmod, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { socketFetch } from '../../src/api-socket.js'
import { CLI, Cleanup, isAlive, runCli, waitFor } from '../helpers/daemon.js'
import { listedNamespaces, skipUnlessNetns } from '../helpers/netns.js'

const unavailable = skipUnlessNetns()
const cleanup = new Cleanup()
afterEach(async () => { await cleanup.run() })

interface Row { name: string, peerId: string, reach: string, address: string, seenAs: string, dataDir: string }

/** `octet testnet --nat …` as a child process, its output collected. */
class NatTestnet {
  stdout = ''
  stderr = ''
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>

  private constructor (readonly child: ChildProcess) {
    child.stdout?.on('data', (c: Buffer) => { this.stdout += c.toString() })
    child.stderr?.on('data', (c: Buffer) => { this.stderr += c.toString() })
    this.exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  }

  static start (args: string[]): NatTestnet {
    const testnet = new NatTestnet(spawn(process.execPath, [CLI, 'testnet', '--nat', '--base-port', '0', '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }))
    cleanup.add(async () => {
      const { child } = testnet
      if (child.exitCode != null || child.signalCode != null) return
      child.kill('SIGINT')
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
      await testnet.exited
      clearTimeout(timer)
    })
    return testnet
  }

  get output (): string {
    return `stderr:\n${this.stderr}\nstdout:\n${this.stdout}`
  }

  /** Namespaces of this testnet process, as `ip netns list` shows them. */
  namespaces (): string[] {
    return listedNamespaces().filter(ns => ns.startsWith(`oct-${this.child.pid}-`))
  }

  async ready (): Promise<Row[]> {
    return await waitFor(async () => {
      if (this.child.exitCode != null) throw new Error(`testnet exited with ${this.child.exitCode}:\n${this.output}`)
      if (!this.stdout.includes('press Ctrl-C')) return undefined
      return [...this.stdout.matchAll(/^(node-\d+)\s+(12D3KooW\S+)\s+(public|NAT)\s+(\S+)\s+(\S+)\s+(\/\S+)$/gm)]
        .map(([, name, peerId, reach, address, seenAs, dataDir]) => ({ name: name ?? '', peerId: peerId ?? '', reach: reach ?? '', address: address ?? '', seenAs: seenAs ?? '', dataDir: dataDir ?? '' }))
    }, { timeoutMs: 90_000, intervalMs: 100, what: 'the NAT testnet to print its table' })
  }
}

async function apiOverSocket<T> (row: Row, path: string): Promise<T> {
  const token = (await readFile(join(row.dataDir, 'api.token'), 'utf8')).trim()
  const res = await socketFetch(join(row.dataDir, 'api.sock'))(path, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(20_000) })
  expect(res.status).toBe(200)
  return await res.json() as T
}

async function daemonPids (rows: Row[]): Promise<number[]> {
  return await Promise.all(rows.map(async r => Number((await readFile(join(r.dataDir, 'daemon.lock'), 'utf8')).trim())))
}

describe.skipIf(unavailable != null)(`octet testnet --nat${unavailable != null ? ` (skipped: ${unavailable})` : ''}`, () => {
  it('4 nodes: node-0 public, 3 behind NAT routers, all connected to node-0 through their routers; SIGINT stops them and removes the namespaces', async () => {
    const dir = await cleanup.tempDir('octet-nat-')
    const testnet = NatTestnet.start(['--nodes', '4', '--dir', dir])
    const rows = await testnet.ready()
    expect(testnet.stderr).toContain('1 public and 3 behind NAT routers')
    expect(testnet.stderr).toContain('3/3 nodes connected to node-0')
    expect(rows.map(r => `${r.name} ${r.reach}`)).toEqual(['node-0 public', 'node-1 NAT', 'node-2 NAT', 'node-3 NAT'])
    // 1 public segment, 1 public host, 3 routers, 3 home hosts
    expect(testnet.namespaces(), testnet.output).toHaveLength(8)
    const [bootstrap, ...natted] = rows as [Row, ...Row[]]
    for (const row of natted) expect(row.seenAs).not.toBe(row.address)

    // node-0 sees each NATed node coming from its router's public address
    const { peers } = await apiOverSocket<{ peers: Array<{ peerId: string, addresses: string[] }> }>(bootstrap, '/v1/peers')
    for (const row of natted) {
      const peer = peers.find(p => p.peerId === row.peerId)
      expect(peer, JSON.stringify(peers)).toBeDefined()
      expect(peer?.addresses.some(a => a.startsWith(`/ip4/${row.seenAs}/tcp/`)), JSON.stringify(peer)).toBe(true)
    }
    // the CLI finds a daemon in a namespace through its api.sock
    const cli = await runCli(['peers', '--data-dir', natted[2]?.dataDir ?? ''])
    expect(cli.code, cli.stderr).toBe(0)
    expect(cli.stdout).toContain(bootstrap.peerId)

    const pids = await daemonPids(rows)
    testnet.child.kill('SIGINT')
    const [code, signal] = await testnet.exited
    expect({ code, signal }, testnet.output).toEqual({ code: 0, signal: null })
    expect(testnet.stderr).toMatch(/^stopped$/m)
    expect(testnet.namespaces()).toEqual([])
    for (const pid of pids) expect(isAlive(pid), `daemon pid ${pid}`).toBe(false)
    for (const row of rows) expect(existsSync(join(row.dataDir, 'api.sock')), `${row.name}/api.sock`).toBe(false)
  })

  it('a node that crashes stops the testnet with its name and removes every namespace', async () => {
    const dir = await cleanup.tempDir('octet-nat-')
    const testnet = NatTestnet.start(['--nodes', '2', '--dir', dir])
    const rows = await testnet.ready()
    expect(testnet.namespaces()).toHaveLength(4)
    const [pid0, pid1] = await daemonPids(rows)
    process.kill(pid1 ?? -1, 'SIGKILL')
    const [code] = await testnet.exited
    expect(code, testnet.output).toBe(1)
    expect(testnet.stderr).toContain('node-1 exited unexpectedly')
    expect(testnet.namespaces()).toEqual([])
    expect(isAlive(pid0 ?? -1)).toBe(false)
  })

  it('a --dir too long for the daemons\' socket paths is refused before anything starts', async () => {
    const dir = join(await cleanup.tempDir('octet-nat-'), 'x'.repeat(100))
    const result = await runCli(['testnet', '--nat', '--nodes', '2', '--dir', dir])
    expect(result.code, result.stderr).toBe(1)
    expect(result.stderr).toMatch(/^octet: --nat reaches each daemon through <data dir>\/api\.sock.*choose a shorter --dir\n$/)
  })
})

describe.skipIf(process.getuid?.() !== 0)('octet testnet --nat, not root', () => {
  const nobodyCanRun = spawnSync(process.execPath, [CLI, '--version'], { uid: 65534, gid: 65534, timeout: 20_000 }).status === 0
  it.skipIf(!nobodyCanRun)('says in one line that it needs root (run as uid 65534)', async () => {
    const dir = await cleanup.tempDir('octet-nat-')
    await chmod(dir, 0o777)
    const result = await runCli(['testnet', '--nat', '--nodes', '2', '--dir', join(dir, 'net')], { uid: 65534, gid: 65534 })
    expect(result.code, result.stderr).toBe(1)
    expect(result.stderr).toBe('octet: --nat builds network namespaces and NAT rules: network namespaces need root (run as root, e.g. with sudo)\n')
  })
})
