import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CLI, Cleanup, DaemonProcess, ROOT, runCli, waitFor, type CliResult } from '../helpers/daemon.js'

const cleanup = new Cleanup()
afterEach(async () => { await cleanup.run() })

const VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

interface Peers { peers: Array<{ peerId: string, addresses: string[] }> }

async function peerIdsOf (daemon: DaemonProcess): Promise<string[]> {
  const res = await daemon.api<Peers>('GET', '/v1/peers')
  expect(res.status).toBe(200)
  return res.body.peers.map(p => p.peerId)
}

/** Waits until `daemon` lists `other` among its connected peers. */
async function waitForPeer (daemon: DaemonProcess, other: DaemonProcess): Promise<void> {
  await waitFor(async () => (await peerIdsOf(daemon)).includes(other.info.peerId) ? true : undefined,
    { what: `${daemon.info.peerId} to list ${other.info.peerId} in /v1/peers` })
}

/** A failed start: a non-zero exit (1: an expected, typed error) and exactly one line "octet: …" on stderr. */
function expectOneLineFailure (result: CliResult): string {
  const context = `exit ${result.code}\nstderr:\n${result.stderr}\nstdout:\n${result.stdout.slice(-2000)}`
  expect(result.code, context).toBe(1)
  expect(result.stderr.endsWith('\n'), context).toBe(true)
  const lines = result.stderr.trimEnd().split('\n')
  expect(lines, context).toHaveLength(1)
  const line = lines[0] ?? ''
  expect(line.startsWith('octet: '), context).toBe(true)
  expect(line).not.toMatch(/\bat .*:\d+:\d+/) // no stack frame
  return line
}

/** Arguments of a daemon that would start fine but for what the test changes. */
function daemonArgs (dataDir: string, overrides: { listen?: string, api?: string, extra?: string[] } = {}): string[] {
  return [
    'daemon', '--data-dir', dataDir,
    '--listen', overrides.listen ?? '/ip4/127.0.0.1/tcp/0',
    '--api', overrides.api ?? '127.0.0.1:0',
    '--no-mdns', '--log-level', 'warn',
    ...(overrides.extra ?? [])
  ]
}

/** A port on 127.0.0.1 held by a plain TCP server for the rest of the test. */
async function busyPort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanup.add(async () => { await new Promise<void>(resolve => server.close(() => { resolve() })) })
  return (server.address() as AddressInfo).port
}

function portOf (address: string): number {
  const match = /\/tcp\/(\d+)/.exec(address)
  if (match?.[1] == null) throw new Error(`no TCP port in ${address}`)
  return Number(match[1])
}

describe('two daemons', () => {
  it('the second bootstraps from the first and each lists the other in /v1/peers', async () => {
    const a = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    const b = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [a.tcpAddress] }, cleanup)
    await waitForPeer(a, b)
    await waitForPeer(b, a)
    expect(a.info.peerId).not.toBe(b.info.peerId)
  })
})

describe('restart', () => {
  it('keeps the identity and the API token; a clean stop removes api.url and daemon.lock', async () => {
    const dataDir = await cleanup.tempDir()
    const first = await DaemonProcess.start({ dataDir }, cleanup)
    const files = {
      identity: await readFile(join(dataDir, 'identity.key')),
      token: await readFile(join(dataDir, 'api.token'), 'utf8')
    }
    expect((await readFile(join(dataDir, 'api.url'), 'utf8')).trim()).toBe(first.info.apiUrl)
    expect((await readFile(join(dataDir, 'daemon.lock'), 'utf8')).trim()).toBe(String(first.child.pid))

    expect(await first.stop()).toBe(0)
    expect(existsSync(join(dataDir, 'api.url'))).toBe(false)
    expect(existsSync(join(dataDir, 'daemon.lock'))).toBe(false)
    expectOneLineFailure(await runCli(['status', '--data-dir', dataDir]))

    const second = await DaemonProcess.start({ dataDir }, cleanup)
    expect(second.info.peerId).toBe(first.info.peerId)
    expect(await readFile(join(dataDir, 'identity.key'))).toEqual(files.identity)
    expect(await readFile(join(dataDir, 'api.token'), 'utf8')).toBe(files.token)
    // the token a client kept from before the restart still works
    const res = await fetch(`${second.info.apiUrl}/v1/identity`, { headers: { authorization: `Bearer ${first.token}` } })
    expect(res.status).toBe(200)
    expect(((await res.json()) as { peerId: string }).peerId).toBe(first.info.peerId)
  })

  it('after a crash (SIGKILL) the CLI says no daemon answers, and a new daemon takes over the stale lock', async () => {
    const dataDir = await cleanup.tempDir()
    const crashed = await DaemonProcess.start({ dataDir }, cleanup)
    await crashed.kill()
    // a crash leaves both files behind
    expect(existsSync(join(dataDir, 'api.url'))).toBe(true)
    expect((await readFile(join(dataDir, 'daemon.lock'), 'utf8')).trim()).toBe(String(crashed.child.pid))
    const line = expectOneLineFailure(await runCli(['id', '--data-dir', dataDir]))
    expect(line).toContain(crashed.info.apiUrl)

    const next = await DaemonProcess.start({ dataDir }, cleanup)
    expect(next.info.peerId).toBe(crashed.info.peerId)
    expect((await readFile(join(dataDir, 'daemon.lock'), 'utf8')).trim()).toBe(String(next.child.pid))
    expect((await runCli(['id', '--data-dir', dataDir])).code).toBe(0)
  })
})

describe('bad input at start: one line on stderr, a non-zero exit, the running daemon untouched', () => {
  // one daemon runs through every case: a failed start must never disturb it or its data
  const shared = new Cleanup()
  let running: DaemonProcess
  let snapshot: Record<string, string>

  async function filesOf (dataDir: string): Promise<Record<string, string>> {
    const names = ['identity.key', 'api.token', 'api.url', 'daemon.lock']
    return Object.fromEntries(await Promise.all(names.map(async n => [n, (await readFile(join(dataDir, n))).toString('base64')])))
  }

  beforeAll(async () => {
    running = await DaemonProcess.start({ dataDir: await shared.tempDir() }, shared)
    snapshot = await filesOf(running.options.dataDir)
  })
  afterAll(async () => { await shared.run() })

  afterEach(async () => {
    expect(running.exited).toBe(false)
    const health = await fetch(`${running.info.apiUrl}/v1/health`)
    expect(health.status).toBe(200)
    expect((await running.api<{ peerId: string }>('GET', '/v1/identity')).body.peerId).toBe(running.info.peerId)
    expect(await filesOf(running.options.dataDir)).toEqual(snapshot)
  })

  it('an unparseable --bootstrap multiaddr', async () => {
    const dataDir = await cleanup.tempDir()
    expectOneLineFailure(await runCli(daemonArgs(dataDir, { extra: ['--bootstrap', '/ip4/127.0.0.1/tcp/notaport'] })))
    // refused before anything was written
    expect(await readdir(dataDir)).toEqual([])
  })

  it('a --bootstrap address whose /p2p/ part is not a PeerId', async () => {
    expectOneLineFailure(await runCli(daemonArgs(await cleanup.tempDir(), { extra: ['--bootstrap', '/ip4/127.0.0.1/tcp/4001/p2p/notapeerid'] })))
  })

  it('a TCP listen port already in use', async () => {
    const port = await busyPort()
    expectOneLineFailure(await runCli(daemonArgs(await cleanup.tempDir(), { listen: `/ip4/127.0.0.1/tcp/${port}` })))
  })

  it('the TCP listen port of the running daemon', async () => {
    expectOneLineFailure(await runCli(daemonArgs(await cleanup.tempDir(), { listen: `/ip4/127.0.0.1/tcp/${portOf(running.tcpAddress)}` })))
  })

  it('an API port already in use', async () => {
    const port = await busyPort()
    const dataDir = await cleanup.tempDir()
    expectOneLineFailure(await runCli(daemonArgs(dataDir, { api: `127.0.0.1:${port}` })))
    // what the failed start had set up is undone: no lock, no api.url left behind
    expect(existsSync(join(dataDir, 'daemon.lock'))).toBe(false)
    expect(existsSync(join(dataDir, 'api.url'))).toBe(false)
  })

  it('the API port of the running daemon', async () => {
    const port = new URL(running.info.apiUrl).port
    expectOneLineFailure(await runCli(daemonArgs(await cleanup.tempDir(), { api: `127.0.0.1:${port}` })))
  })

  it('a data directory whose parent is a regular file (ENOTDIR)', async () => {
    const file = join(await cleanup.tempDir(), 'not-a-dir')
    await writeFile(file, 'x')
    expectOneLineFailure(await runCli(daemonArgs(join(file, 'data'))))
  })

  const isRoot = process.getuid?.() === 0
  // as root, the read-only cases run the daemon as nobody (65534); that needs the checkout and the
  // Node binary to be readable by nobody, which depends on where the clone lives (a 0700 temp
  // directory is not). Where it cannot, the ENOTDIR case above still shows the unwritable path.
  const nobodyCanRun = isRoot && spawnSync(process.execPath, [CLI, '--version'], { uid: 65534, gid: 65534, timeout: 20_000 }).status === 0
  // root writes through permission bits, so the read-only case runs the daemon as nobody (65534)
  it.skipIf(!nobodyCanRun)('a data directory this user cannot write (0700, owned by root, daemon run as uid 65534)', async () => {
    const parent = await cleanup.tempDir()
    await chmod(parent, 0o755)
    const dataDir = join(parent, 'data')
    await mkdir(dataDir, { mode: 0o700 })
    const result = await runCli(daemonArgs(dataDir), { uid: 65534, gid: 65534 })
    expectOneLineFailure(result)
    expect(await readdir(dataDir)).toEqual([])
  })

  it.skipIf(!nobodyCanRun)('a data directory that is readable but not writable (0755, owned by root, daemon run as uid 65534)', async () => {
    const parent = await cleanup.tempDir()
    await chmod(parent, 0o755)
    const dataDir = join(parent, 'data')
    await mkdir(dataDir, { mode: 0o755 })
    expectOneLineFailure(await runCli(daemonArgs(dataDir), { uid: 65534, gid: 65534 }))
    expect(await readdir(dataDir)).toEqual([])
  })

  it('the data directory of the running daemon: DAEMON_ALREADY_RUNNING names its pid', async () => {
    const line = expectOneLineFailure(await runCli(daemonArgs(running.options.dataDir)))
    expect(line).toContain(`pid ${running.child.pid}`)
  })
})

describe('API over HTTP', () => {
  it('refuses a request without the token (401) and answers an unknown route with 404 JSON', async () => {
    const daemon = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    const url = daemon.info.apiUrl

    const health = await fetch(`${url}/v1/health`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ status: 'ok', version: VERSION })

    const noToken = await fetch(`${url}/v1/identity`)
    expect(noToken.status).toBe(401)
    expect(noToken.headers.get('www-authenticate')).toMatch(/^Bearer /)
    expect(await noToken.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } })

    const wrongToken = await fetch(`${url}/v1/peers`, { headers: { authorization: 'Bearer wrong' } })
    expect(wrongToken.status).toBe(401)

    const unknown = await daemon.api('GET', '/v1/no-such-route')
    expect(unknown.status).toBe(404)
    expect(unknown.body).toMatchObject({ error: { code: 'NOT_FOUND' } })

    const identity = await daemon.api<{ peerId: string, listenAddresses: string[] }>('GET', '/v1/identity')
    expect(identity.status).toBe(200)
    expect(identity.body.peerId).toBe(daemon.info.peerId)
    expect(identity.body.listenAddresses.some(a => a.startsWith('/ip4/127.0.0.1/tcp/'))).toBe(true)

    const openapi = await fetch(`${url}/v1/openapi.json`)
    expect(openapi.status).toBe(200)

    // octet's fixes to the libp2p stack (src/node/stack-fixes.ts) found what they patch; one that did not is also a warning at start
    const stats = await daemon.api<{ stackFixes: Array<{ fix: string, active: boolean }> }>('GET', '/v1/stats')
    expect(stats.body.stackFixes.map(f => [f.fix, f.active])).toEqual([['length-prefixed-decoder', true], ['yamux-window-update', true]])
  })
})

describe('CLI against a daemon', () => {
  it('octet id, peers and status print the PeerId, the peer and "running"', async () => {
    const a = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    const b = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [a.tcpAddress] }, cleanup)
    await waitForPeer(a, b)
    const dir = a.options.dataDir

    const id = await runCli(['id', '--data-dir', dir])
    expect(id.code, id.stderr).toBe(0)
    expect(id.stdout.split('\n')[0]).toBe(a.info.peerId)
    expect(id.stdout).toContain(`/ip4/127.0.0.1/tcp/${portOf(a.tcpAddress)}/p2p/${a.info.peerId}`)

    const peers = await runCli(['peers', '--data-dir', dir])
    expect(peers.code, peers.stderr).toBe(0)
    expect(peers.stdout).toContain(b.info.peerId)

    const status = await runCli(['status', '--data-dir', dir])
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toMatch(/^running\s+true$/m)
    expect(status.stdout).toMatch(new RegExp(`^peerId\\s+${a.info.peerId}$`, 'm'))
    expect(status.stdout).toMatch(/^peers\s+1$/m)

    // the data directory may also come from the environment
    const fromEnv = await runCli(['status', '--json'], { env: { OCTET_DATA_DIR: dir } })
    expect(fromEnv.code, fromEnv.stderr).toBe(0)
    expect(JSON.parse(fromEnv.stdout)).toMatchObject({ running: true, peerId: a.info.peerId, peers: 1, version: VERSION })
  })

  it.each(['id', 'peers', 'status'])('octet %s with no daemon on the data directory: one line, non-zero exit', async (command) => {
    const dataDir = await cleanup.tempDir()
    const line = expectOneLineFailure(await runCli([command, '--data-dir', dataDir]))
    expect(line.startsWith('octet: no octet daemon is running')).toBe(true)
  })
})

/** A Node older than 22 on this machine (the system's), if any: the CLI must re-run itself on the pinned one. */
function findOldNode (): string | undefined {
  let candidates: string[]
  try {
    candidates = execFileSync('which', ['-a', 'node'], { encoding: 'utf8' }).split('\n').filter(l => l !== '')
  } catch {
    return undefined
  }
  for (const candidate of [...new Set(['/usr/bin/node', ...candidates])]) {
    try {
      const version = execFileSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim()
      if (Number(version.split('.')[0]) < 22) return candidate
    } catch {}
  }
  return undefined
}
const oldNode = findOldNode()
const withoutReexec = { OCTET_REEXEC: undefined }

describe(`started with the system Node (${oldNode ?? 'none older than 22 on this machine: skipped'})`, () => {
  it.skipIf(oldNode == null)('re-runs itself on the pinned Node: --version, and a one-line error with its exit code', async () => {
    const version = await runCli(['--version'], { node: oldNode, env: withoutReexec })
    expect(version.code, version.stderr).toBe(0)
    expect(version.stdout.trim()).toBe(VERSION)

    const failure = await runCli(['status', '--data-dir', await cleanup.tempDir()], { node: oldNode, env: withoutReexec })
    expect(expectOneLineFailure(failure).startsWith('octet: no octet daemon is running')).toBe(true)
  })

  it.skipIf(oldNode == null)('runs a daemon, and passes SIGTERM on so that it stops cleanly', async () => {
    const dataDir = await cleanup.tempDir()
    const child = spawn(oldNode ?? 'node', [CLI, ...daemonArgs(dataDir)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...withoutReexec } })
    let output = ''
    child.stdout.on('data', (c: Buffer) => { output += c.toString() })
    child.stderr.on('data', (c: Buffer) => { output += c.toString() })
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>
    cleanup.add(async () => {
      if (child.exitCode == null && child.signalCode == null) { child.kill('SIGKILL'); await exited }
    })
    // no IPC through the re-exec: the daemon is up when its API answers
    const apiUrl = await waitFor(async () => {
      const url = (await readFile(join(dataDir, 'api.url'), 'utf8')).trim()
      return (await fetch(`${url}/v1/health`)).ok ? url : undefined
    }, { what: `the daemon under ${oldNode} to answer; output:\n${output}` })
    const pid = Number((await readFile(join(dataDir, 'daemon.lock'), 'utf8')).trim())
    expect(pid).not.toBe(child.pid) // the daemon is the pinned-Node child, not the wrapper

    child.kill('SIGTERM')
    const [code] = await exited
    expect(code, output).toBe(0)
    expect(existsSync(join(dataDir, 'daemon.lock'))).toBe(false)
    expect(existsSync(join(dataDir, 'api.url'))).toBe(false)
    await expect(fetch(`${apiUrl}/v1/health`)).rejects.toThrow()
  })
})
