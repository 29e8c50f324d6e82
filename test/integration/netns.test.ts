import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Topology, sweepStaleNamespaces } from '../../src/testnet/netns.js'
import { Cleanup, DaemonProcess, ROOT, isAlive, waitFor } from '../helpers/daemon.js'
import { ProbeServer, connectFrom, listedNamespaces, skipUnlessNetns } from '../helpers/netns.js'

const unavailable = skipUnlessNetns()
/** An unanswered SYN is retried for a minute or more: a connection that got nowhere in this time is blocked. */
const BLOCKED_AFTER = 1_500
const PORT = 7000
const DIST_NETNS = join(ROOT, 'dist', 'testnet', 'netns.js')

describe.skipIf(unavailable != null)(`NAT topology in network namespaces${unavailable != null ? ` (skipped: ${unavailable})` : ''}`, () => {
  let topology: Topology
  let buildMs = 0
  const servers: ProbeServer[] = []

  beforeAll(async () => {
    const started = performance.now()
    topology = await Topology.create({ publicHosts: 2, homes: [{ hosts: 2 }, { hosts: 1 }] }, { signal: AbortSignal.timeout(10_000) })
    buildMs = performance.now() - started
    for (const host of ['pub0', 'home0-0', 'home1-0']) servers.push(await ProbeServer.start(topology, host, PORT))
  })
  afterAll(async () => { await topology?.destroy() })

  it('builds in well under two seconds, every namespace named with the run\'s prefix', () => {
    console.log(`topology of ${topology.namespaces.length} namespaces (2 public hosts, 2 homes, 3 home hosts) built in ${buildMs.toFixed(0)} ms`)
    expect(buildMs).toBeLessThan(2_000)
    expect(topology.namespaces).toHaveLength(1 + 2 + 2 + 3)
    for (const ns of topology.namespaces) expect(ns.startsWith(`oct-${process.pid}-`)).toBe(true)
    expect(listedNamespaces()).toEqual(expect.arrayContaining(topology.namespaces))
    expect(topology.hosts.map(h => `${h.name} ${h.kind} ${h.address}`)).toEqual([
      'pub0 public 198.18.1.1', 'pub1 public 198.18.1.2', 'home0-0 home 10.1.0.2', 'home0-1 home 10.1.0.3', 'home1-0 home 10.1.1.2'
    ])
  })

  it('a home host reaches a public host, seen from its router\'s public address (masquerade)', async () => {
    const pub = topology.host('pub0')
    expect(await connectFrom(topology, 'home0-1', pub.address, PORT, 5_000)).toBe('connected')
    expect(await connectFrom(topology, 'home1-0', pub.address, PORT, 5_000)).toBe('connected')
    const seen = servers[0]?.accepted ?? []
    expect(seen).toContain(topology.homes[0]?.router.address)
    expect(seen).toContain(topology.homes[1]?.router.address)
    expect(seen.some(a => a.startsWith('10.'))).toBe(false)
  })

  it('a public host cannot open a connection to a home host: refused at the router, dropped even with a route into the LAN', async () => {
    const home0 = topology.homes[0]
    if (home0 == null) throw new Error('no home 0')
    // no port forwarding: the router's public address has nothing listening
    expect(await connectFrom(topology, 'pub0', home0.router.address, PORT, BLOCKED_AFTER)).toBe('error ECONNREFUSED')
    // a public host that routes the LAN through the router (as an attacker next to it could): FORWARD drops it
    const route = await topology.exec('pub0', 'ip', ['route', 'add', home0.lan, 'via', home0.router.address])
    expect(route.code, route.stderr).toBe(0)
    expect(await connectFrom(topology, 'pub0', topology.host('home0-0').address, PORT, BLOCKED_AFTER)).toBe('timeout')
  })

  it('a host in one home cannot reach a host in another; two hosts of one home reach each other over their LAN', async () => {
    const outcome = await connectFrom(topology, 'home1-0', topology.host('home0-0').address, PORT, BLOCKED_AFTER)
    expect(outcome).not.toBe('connected')
    expect(await connectFrom(topology, 'home1-0', topology.homes[0]?.router.address ?? '', PORT, BLOCKED_AFTER)).toBe('error ECONNREFUSED')
    expect(await connectFrom(topology, 'home0-1', topology.host('home0-0').address, PORT, 5_000)).toBe('connected')
  })

  it('daemons inside: one at home bootstraps from a public one and is seen from its router\'s address; both APIs answer through api.sock', async () => {
    const cleanup = new Cleanup()
    try {
      const pub = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), netns: { topology, host: 'pub1' } }, cleanup)
      const home = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), netns: { topology, host: 'home0-1' }, bootstrap: [pub.tcpAddress] }, cleanup)
      expect(pub.tcpAddress).toContain(`/ip4/${topology.host('pub1').address}/tcp/`)
      const seen = await waitFor(async () => {
        const { body } = await pub.api<{ peers: Array<{ peerId: string, addresses: string[] }> }>('GET', '/v1/peers')
        return body.peers.find(p => p.peerId === home.info.peerId)
      }, { what: 'the public daemon to list the one at home' })
      expect(seen.addresses.some(a => a.startsWith(`/ip4/${topology.homes[0]?.router.address}/tcp/`)), JSON.stringify(seen)).toBe(true)
    } finally {
      await cleanup.run()
    }
  })

  it('forwards IP in routers only', async () => {
    const forwarding = async (ns: string): Promise<string> => (await topology.exec(topology.host(ns), 'cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim()
    expect(await forwarding('home0-router')).toBe('1')
    expect(await forwarding('pub0')).toBe('0')
    expect(await forwarding('home0-0')).toBe('0')
  })
})

describe.skipIf(unavailable != null)(`removing the namespaces${unavailable != null ? ` (skipped: ${unavailable})` : ''}`, () => {
  it('destroy() stops what runs inside and leaves no namespace of the run; a second call is a no-op', async () => {
    const topology = await Topology.create({ publicHosts: 2, homes: [{ hosts: 1 }, { hosts: 1 }] })
    const server = await ProbeServer.start(topology, 'home0-0', PORT)
    const started = performance.now()
    await topology.destroy()
    console.log(`topology of ${topology.namespaces.length} namespaces destroyed in ${(performance.now() - started).toFixed(0)} ms (one process inside, stopped with SIGTERM)`)
    expect(server.child.exitCode != null || server.child.signalCode != null).toBe(true)
    expect(listedNamespaces().filter(ns => ns.startsWith(`${topology.id}-`))).toEqual([])
    await topology.destroy()
  })

  it('an aborted build leaves nothing behind', async () => {
    const before = listedNamespaces()
    await expect(Topology.create({ publicHosts: 1, homes: [{ hosts: 1 }] }, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'NETNS_FAILED' })
    expect(listedNamespaces()).toEqual(before)
  })

  /** A child process that builds a topology with the built module, prints its namespaces, then does `then`. */
  async function childWithTopology (then: 'wait' | 'throw' | 'sigterm'): Promise<{ child: ReturnType<typeof spawn>, namespaces: string[], sleeper: number }> {
    const script = `
      const { Topology } = await import(${JSON.stringify(DIST_NETNS)})
      const topology = await Topology.create({ publicHosts: 1, homes: [{ hosts: 1 }] })
      // a process inside that does not belong to the child's own tree of waits
      const sleeper = topology.spawn('home0-0', 'sleep', ['600'], { stdio: 'ignore', detached: true })
      sleeper.unref()
      console.log(JSON.stringify({ namespaces: topology.namespaces, sleeper: sleeper.pid }))
      const then = ${JSON.stringify(then)}
      if (then === 'throw') setTimeout(() => { throw new Error('crash') }, 50)
      else if (then === 'sigterm') setTimeout(() => process.kill(process.pid, 'SIGTERM'), 50)
      // a busy program (a process with nothing left to do would exit before a signal reached it)
      setInterval(() => {}, 1000)`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    while (!stdout.includes('\n')) {
      const [event] = await Promise.race([once(child.stdout, 'data').then(() => ['data']), once(child, 'exit').then(() => ['exit'])])
      if (event === 'exit' && !stdout.includes('\n')) throw new Error(`child exited before building: ${stderr}`)
    }
    const { namespaces, sleeper } = JSON.parse(stdout.split('\n')[0] ?? '') as { namespaces: string[], sleeper: number }
    return { child, namespaces, sleeper }
  }

  it('a process that dies of an uncaught exception or an unhandled SIGTERM removes its namespaces on the way out', async () => {
    for (const then of ['throw', 'sigterm'] as const) {
      const { child, namespaces, sleeper } = await childWithTopology(then)
      if (child.exitCode == null && child.signalCode == null) await once(child, 'exit')
      expect(then === 'throw' ? child.exitCode : child.signalCode, then).toBe(then === 'throw' ? 1 : 'SIGTERM')
      const left = listedNamespaces()
      expect(namespaces.filter(ns => left.includes(ns)), then).toEqual([])
      // a process inside got SIGTERM on the way out
      await waitUntil(() => !isAlive(sleeper), `the process inside to end (${then})`)
    }
  })

  it('after SIGKILL nothing can clean up: the next run sweeps the namespaces of dead processes and what still runs inside', async () => {
    const { child, namespaces, sleeper } = await childWithTopology('wait')
    child.kill('SIGKILL')
    await once(child, 'exit')
    expect(listedNamespaces()).toEqual(expect.arrayContaining(namespaces))
    expect(isAlive(sleeper)).toBe(true)

    const swept = await sweepStaleNamespaces()
    expect(swept).toEqual(expect.arrayContaining(namespaces))
    const left = listedNamespaces()
    expect(namespaces.filter(ns => left.includes(ns))).toEqual([])
    await waitUntil(() => !isAlive(sleeper), 'the orphan inside to be killed')
  })
})

describe.skipIf(unavailable == null || process.platform !== 'linux')('without what namespaces need', () => {
  it('says why in one line', () => {
    expect(unavailable).toMatch(/root|missing|Linux|cannot create/)
  })
})

describe.skipIf(process.getuid?.() !== 0)('not root', () => {
  it('Topology.create refuses with NETNS_UNSUPPORTED and says root is needed', () => {
    const script = `
      const { Topology } = await import(${JSON.stringify(DIST_NETNS)})
      try { await Topology.create({ publicHosts: 1, homes: [] }) } catch (err) { console.log(err.code + ': ' + err.message) }`
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 20_000 })
    // uid 65534 cannot read the worktree (or run its Node binary) here, e.g. a clone in a 0700 temp dir: nothing to check
    if (result.error != null || (result.status !== 0 && (result.stdout ?? '') === '')) return
    expect(result.stdout.trim()).toBe('NETNS_UNSUPPORTED: network namespaces need root (run as root, e.g. with sudo)')
  })
})

/** Reaping by the kernel is not an event this process can await: poll, briefly. */
async function waitUntil (check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
