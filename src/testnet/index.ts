import { SECOND } from '../units.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import { setTimeout as delayFor } from 'node:timers/promises'
import { OctetError } from '../errors.js'
import { dataDirPaths } from '../datadir.js'
import type { ReadyMessage } from '../daemon.js'
import { UNIX_SOCKET_PATH_MAX, fitsUnixSocket, socketFetch, urlFetch, type ApiFetch } from '../api-socket.js'
import { Topology, type NetHost } from './netns.js'
import { assertNetnsSupported } from './netns-host.js'

export const NODE_START_TIMEOUT = 30 * SECOND
export const DHT_READY_TIMEOUT = 60 * SECOND
/** How long every node of a NAT testnet has to connect to the bootstrap node once all are up. */
export const BOOTSTRAP_READY_TIMEOUT = 30 * SECOND
/** Pause between two looks at a node's peers (a local socket round trip: cheap). */
const BOOTSTRAP_POLL_INTERVAL = 100
const STOP_TIMEOUT = 10 * SECOND
const LOOKUP_TIMEOUT = 10 * SECOND
/** Pause before a pair whose DHT lookup failed tries again: doubled after each failure, up to the max. */
const DHT_RETRY_DELAY = 250
const DHT_RETRY_DELAY_MAX = 2 * SECOND
const DHT_PROGRESS_INTERVAL = SECOND
/** Ports per node when a base port is given: TCP, WebSockets, API. */
export const PORTS_PER_NODE = 3

/**
 * Node.js flags of the daemons a testnet starts. V8 lets a process's young generation grow
 * to two 16 MB semi-spaces; a daemon allocates little that lives long, and with 4 MB
 * semi-spaces each one holds about 20 MB less RSS (10 nodes: median 164 → 143 MB) at no
 * measured CPU cost (`npm run bench -- testnet`). Many daemons share one machine here.
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=4']

// src/testnet and dist/testnet both sit two levels below the package root
const CLI_ENTRY = fileURLToPath(new URL('../../bin/octet.js', import.meta.url))

export interface TestnetOptions {
  nodes: number
  dir: string
  /** 0: every port is picked by the OS. */
  basePort: number
  logLevel?: string
  /** Extra environment for every daemon. */
  env?: NodeJS.ProcessEnv
  /**
   * Each daemon in a network namespace of its own (Linux, root, iproute2 and iptables): node-0
   * and a quarter of the others on public hosts, every other node alone behind a NAT router.
   */
  nat?: boolean
  /** NAT testnets: first two octets of the public /16 (default DEFAULT_PUBLIC_NET of netns.ts) */
  publicNet?: string
}

/** Where a node of a NAT testnet runs. */
export interface TestnetPlacement {
  /** public: reachable by all; nat: behind its home's router, reachable by nobody who did not hear from it first */
  reach: 'public' | 'nat'
  /** the host in the topology (`pub0`, `home2-0`) and its network namespace */
  host: string
  namespace: string
  /** the node's own address in its namespace */
  address: string
  /** the address others see it from: its own, or its router's public one */
  seenAs: string
}

export interface TestnetNode {
  name: string
  peerId: string
  apiUrl: string
  addresses: string[]
  dataDir: string
  pid: number
  logFile: string
  /** `<data dir>/api.sock`: the only way to the API of a node in a network namespace */
  apiSocket?: string
  /** NAT testnets: where the node runs */
  placement?: TestnetPlacement
}

export type TestnetProgress =
  | { stage: 'node-started', node: TestnetNode, started: number, total: number }
  | { stage: 'dht', found: number, total: number }
  | { stage: 'topology', publicHosts: number, homes: number, elapsedMs: number }
  | { stage: 'bootstrap', connected: number, total: number }
  | { stage: 'ready', elapsedMs: number }

/** One launch of a node's daemon; a restart replaces it. */
interface Running {
  name: string
  index: number
  child: ChildProcess
  log: WriteStream
  stderrTail: string[]
  info?: TestnetNode
  /** stopNode() asked it to exit: not an unexpected exit */
  stoppedOnPurpose: boolean
}

/**
 * N real daemons as child processes on 127.0.0.1, the first the bootstrap
 * peer of the others, mDNS off. Ready only once every node has found every
 * other node through a DHT query. Single nodes can be stopped and started
 * again on their data directory (a peer going offline and coming back).
 * With `nat`, each daemon runs in a network namespace of its own instead (some
 * public, the others behind NAT routers), is reached through its api.sock, and
 * the testnet is ready once every node is connected to node-0.
 */
export class Testnet {
  private readonly running: Running[] = []
  private stopping: Promise<void> | undefined
  private readonly exitListeners: Array<(name: string, code: number | null) => void> = []
  private topology: Topology | undefined
  /** NAT testnets: the host of each node, by index */
  private placements: NetHost[] = []

  constructor (private readonly options: TestnetOptions) {}

  /** How many of `nodes` a NAT testnet puts on public hosts: node-0 and a quarter of the rest, at least one. */
  static publicShare (nodes: number): number {
    return Math.max(1, Math.ceil(nodes / 4))
  }

  /** Nodes that came up, stopped ones too (see isRunning); one that startNode() brings back reappears once ready. */
  get nodes (): TestnetNode[] {
    return this.running.flatMap(r => r.info != null ? [r.info] : [])
  }

  isRunning (name: string): boolean {
    const entry = this.running.find(r => r.name === name)
    return entry != null && isAlive(entry.child)
  }

  /** Called when a node exits while the testnet is not stopping and stopNode() did not ask it to. */
  onUnexpectedExit (listener: (name: string, code: number | null) => void): void {
    this.exitListeners.push(listener)
  }

  async start (onProgress: (p: TestnetProgress) => void = () => {}, signal?: AbortSignal): Promise<TestnetNode[]> {
    const startedAt = Date.now()
    const { nodes } = this.options
    try {
      if (this.options.nat === true) await this.buildTopology(onProgress, signal)
      const first = await this.launch(0, [], signal)
      onProgress({ stage: 'node-started', node: first, started: 1, total: nodes })
      const bootstrap = tcpAddresses(first)
      let started = 1
      await Promise.all(Array.from({ length: nodes - 1 }, async (_, k) => {
        const node = await this.launch(k + 1, bootstrap, signal)
        onProgress({ stage: 'node-started', node, started: ++started, total: nodes })
      }))
      // keep the table in node order whatever order they came up in
      this.running.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
      if (this.options.nat === true) await this.waitForBootstrap(onProgress, signal)
      else await this.waitForDht(onProgress, signal)
    } catch (err) {
      await this.stop()
      throw err
    }
    onProgress({ stage: 'ready', elapsedMs: Date.now() - startedAt })
    return this.nodes
  }

  /**
   * The topology of a NAT testnet. One home per NATed node rather than several nodes per home:
   * then every pair of NATed nodes has two NATs between them, the case relays and hole
   * punching exist for, and no pair can fall back on a shared LAN (with mDNS off they would
   * not find each other there anyway). A router costs one more namespace, about 10 ms.
   */
  private async buildTopology (onProgress: (p: TestnetProgress) => void, signal?: AbortSignal): Promise<void> {
    const { nodes } = this.options
    this.checkNat()
    const publicHosts = Testnet.publicShare(nodes)
    const startedAt = Date.now()
    this.topology = await Topology.create({ publicHosts, homes: Array.from({ length: nodes - publicHosts }, () => ({ hosts: 1 })) }, { signal, publicNet: this.options.publicNet })
    this.placements = [...this.topology.publicHosts, ...this.topology.homes.map(home => home.hosts[0] as NetHost)]
    onProgress({ stage: 'topology', publicHosts, homes: nodes - publicHosts, elapsedMs: Date.now() - startedAt })
  }

  /**
   * Throws what a NAT testnet lacks here, before anything starts: NETNS_UNSUPPORTED (not Linux,
   * not root, no iproute2 or iptables), or INVALID_CONFIG for a --dir whose daemons' socket
   * paths would be too long (every daemon is reached through its socket).
   */
  checkNat (): void {
    const { nodes, dir } = this.options
    const longest = dataDirPaths(resolve(dir, `node-${nodes - 1}`)).apiSocket
    if (!fitsUnixSocket(longest)) {
      throw new OctetError('INVALID_CONFIG', `--nat reaches each daemon through <data dir>/api.sock, and ${longest} is longer than a Unix socket path may be (${UNIX_SOCKET_PATH_MAX} bytes); choose a shorter --dir`)
    }
    assertNetnsSupported()
  }

  private placement (index: number): TestnetPlacement | undefined {
    const host = this.placements[index]
    if (host == null) return undefined
    const router = host.home != null ? this.topology?.homes[host.home]?.router : undefined
    return { reach: host.kind === 'public' ? 'public' : 'nat', host: host.name, namespace: host.namespace, address: host.address, seenAs: router?.address ?? host.address }
  }

  private nodeArgs (index: number, dataDir: string, bootstrap: string[]): string[] {
    const base = this.options.basePort
    const port = (offset: number): number => base === 0 ? 0 : base + index * PORTS_PER_NODE + offset
    // in a namespace the node listens on its address there; its API stays on the namespace's own loopback
    const ip = this.placements[index]?.address ?? '127.0.0.1'
    return [
      CLI_ENTRY, 'daemon',
      '--data-dir', dataDir,
      '--listen', `/ip4/${ip}/tcp/${port(0)}`,
      '--listen', `/ip4/${ip}/tcp/${port(1)}/ws`,
      '--api', `127.0.0.1:${port(2)}`,
      '--no-mdns',
      '--log-level', this.options.logLevel ?? 'info',
      // the lab's "internet" uses a private range, which AutoNAT by design never tests: its
      // public hosts say what they are, and then relay for the homes
      ...(this.placements[index]?.kind === 'public' ? ['--reachability', 'public'] : []),
      ...bootstrap.flatMap(b => ['--bootstrap', b])
    ]
  }

  /**
   * SIGTERM to one node (SIGKILL after a grace period), resolving once it exited. Its data
   * directory stays, for startNode(). Idempotent.
   */
  async stopNode (name: string): Promise<void> {
    const entry = this.entry(name)
    entry.stoppedOnPurpose = true
    await terminate(entry)
  }

  /**
   * Starts a stopped node again on its data directory: the same PeerId, and the same ports
   * when the testnet has a base port (with base port 0 the OS picks new ones; the node's
   * entry in `nodes` then has the new API URL, addresses and pid). It bootstraps from
   * node-0, or from another running node when node-0 is the one starting or is stopped.
   * A node already running is left alone.
   */
  async startNode (name: string, signal?: AbortSignal): Promise<TestnetNode> {
    const entry = this.entry(name)
    if (this.stopping != null) throw stoppingError(name)
    if (isAlive(entry.child)) {
      if (entry.info != null) return entry.info
      throw new OctetError('TESTNET_NODE_FAILED', `${name} is already starting`)
    }
    const peers = this.running.filter(r => r.name !== name && r.info != null && isAlive(r.child))
    const bootstrapPeer = peers.find(r => r.index === 0) ?? peers[0]
    if (bootstrapPeer?.info == null) throw new OctetError('TESTNET_NODE_FAILED', `cannot start ${name}: no other node is running to bootstrap from`)
    return await this.launch(entry.index, tcpAddresses(bootstrapPeer.info), signal)
  }

  private entry (name: string): Running {
    const entry = this.running.find(r => r.name === name)
    if (entry == null) throw new OctetError('TESTNET_NODE_FAILED', `no node named ${name} in this testnet (${this.running.map(r => r.name).join(', ')})`)
    return entry
  }

  /** Spawns node `index` and waits for its "ready"; a node started before is replaced in the table. */
  private async launch (index: number, bootstrap: string[], signal?: AbortSignal): Promise<TestnetNode> {
    const name = `node-${index}`
    const dataDir = resolve(this.options.dir, name)
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    // a daemon spawned now would outlive stop()
    if (this.stopping != null) throw stoppingError(name)
    const logFile = join(dataDir, 'daemon.log')
    const log = createWriteStream(logFile, { flags: 'a' })
    const spawnOptions = {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'] as Array<'ignore' | 'pipe' | 'ipc'>,
      env: { ...process.env, ...this.options.env, OCTET_DATA_DIR: undefined, OCTET_LISTEN: undefined, OCTET_API: undefined, OCTET_BOOTSTRAP: undefined }
    }
    const args = [...DAEMON_NODE_FLAGS, ...this.nodeArgs(index, dataDir, bootstrap)]
    const host = this.placements[index]
    const child = this.topology != null && host != null
      ? this.topology.spawn(host, process.execPath, args, spawnOptions)
      : spawn(process.execPath, args, spawnOptions)
    const entry: Running = { name, index, child, log, stderrTail: [], stoppedOnPurpose: false }
    const previous = this.running.findIndex(r => r.name === name)
    if (previous === -1) this.running.push(entry)
    else this.running[previous] = entry
    child.stdout?.pipe(log, { end: false })
    child.stderr?.on('data', (chunk: Buffer) => {
      log.write(chunk)
      entry.stderrTail.push(...chunk.toString('utf8').split('\n').filter(l => l.trim() !== ''))
      entry.stderrTail.splice(0, Math.max(0, entry.stderrTail.length - 5))
    })
    child.once('exit', code => {
      if (this.stopping == null && entry.info != null && !entry.stoppedOnPurpose) {
        for (const listener of this.exitListeners) listener(name, code)
      }
    })

    const ready = await new Promise<ReadyMessage>((resolveReady, reject) => {
      const timer = setTimeout(() => { fail(new OctetError('TESTNET_NODE_FAILED', `${name} did not start within ${NODE_START_TIMEOUT / SECOND} s; see ${logFile}`)) }, NODE_START_TIMEOUT)
      const onAbort = (): void => { fail(new OctetError('TESTNET_NODE_FAILED', `${name}: start aborted`)) }
      const onMessage = (message: unknown): void => {
        if ((message as ReadyMessage | undefined)?.type === 'ready') { cleanup(); resolveReady(message as ReadyMessage) }
      }
      const onExit = (code: number | null): void => {
        // stderr may still hold the daemon's last words: let it drain first
        setImmediate(() => {
          const why = entry.stderrTail.at(-1) ?? `exited with code ${code}`
          fail(new OctetError('TESTNET_NODE_FAILED', `${name} failed to start: ${why.replace(/^octet: /, '')}`))
        })
      }
      const cleanup = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        child.off('message', onMessage)
        child.off('exit', onExit)
      }
      const fail = (err: Error): void => { cleanup(); reject(err) }
      signal?.addEventListener('abort', onAbort, { once: true })
      child.on('message', onMessage)
      child.once('exit', onExit)
    })
    if (this.topology != null && ready.apiSocket == null) {
      throw new OctetError('TESTNET_NODE_FAILED', `${name} serves no api.sock, the only way to its API from outside its namespace; see ${logFile}`)
    }
    const placement = this.placement(index)
    entry.info = {
      name,
      peerId: ready.peerId,
      apiUrl: ready.apiUrl,
      addresses: ready.addresses,
      dataDir,
      pid: child.pid ?? -1,
      logFile,
      ...(ready.apiSocket != null ? { apiSocket: ready.apiSocket } : {}),
      ...(placement != null ? { placement } : {})
    }
    return entry.info
  }

  /**
   * Every node looks every other node up in the DHT. Each pair retries on its own, soon after
   * a failed lookup, until the deadline: a lookup that fails does so within a second or so,
   * while the slowest of 90 concurrent ones takes several, and waiting for a whole round
   * before any retry added a second round (measured on 10 nodes: 0.8–1.7 s after the first
   * attempts were all done; with retries per pair, none).
   */
  private async waitForDht (onProgress: (p: TestnetProgress) => void, signal?: AbortSignal): Promise<void> {
    const nodes = this.nodes
    const pairs = nodes.flatMap(from => nodes.filter(to => to !== from).map(to => ({ from, to })))
    const total = pairs.length
    const deadline = Date.now() + DHT_READY_TIMEOUT
    const tokens = new Map<string, string>()
    for (const node of nodes) tokens.set(node.name, (await readFile(dataDirPaths(node.dataDir).token, 'utf8')).trim())
    let found = 0
    let reportedAt = Date.now()
    onProgress({ stage: 'dht', found, total })
    const failed: typeof pairs = []
    await Promise.all(pairs.map(async pair => {
      const token = tokens.get(pair.from.name) ?? ''
      let delay = DHT_RETRY_DELAY
      while (signal?.aborted !== true) {
        if (await lookup(this.apiOf(pair.from), pair.to.peerId, token, signal)) {
          found++
          // progress at most once per interval, and always the last
          if (found === total || Date.now() - reportedAt >= DHT_PROGRESS_INTERVAL) {
            reportedAt = Date.now()
            onProgress({ stage: 'dht', found, total })
          }
          return
        }
        if (Date.now() + delay > deadline) {
          failed.push(pair)
          return
        }
        await sleep(delay, signal)
        delay = Math.min(delay * 2, DHT_RETRY_DELAY_MAX)
      }
    }))
    if (signal?.aborted === true) throw new OctetError('TESTNET_NOT_READY', 'aborted while waiting for the DHT')
    if (failed.length > 0) {
      onProgress({ stage: 'dht', found, total })
      const example = failed[0]
      throw new OctetError('TESTNET_NOT_READY', `after ${DHT_READY_TIMEOUT / SECOND} s, ${failed.length} of ${total} DHT lookups still fail (e.g. ${example?.from.name} cannot find ${example?.to.name}); see the daemons' logs in ${this.options.dir}`)
    }
  }

  /**
   * NAT testnets: ready once every node lists node-0 among its connected peers and every
   * node behind a NAT holds a relay reservation (it found out that it is behind a NAT and
   * has a `/p2p-circuit` address others can dial). Each node dialled node-0 (its bootstrap
   * peer) on its own; a NATed node's connection goes out through its router.
   */
  private async waitForBootstrap (onProgress: (p: TestnetProgress) => void, signal?: AbortSignal): Promise<void> {
    const [bootstrap, ...others] = this.nodes
    if (bootstrap == null) return
    const deadline = Date.now() + BOOTSTRAP_READY_TIMEOUT
    let connected = 0
    onProgress({ stage: 'bootstrap', connected, total: others.length })
    const waiting: TestnetNode[] = []
    await Promise.all(others.map(async node => {
      const token = (await readFile(dataDirPaths(node.dataDir).token, 'utf8')).trim()
      while (signal?.aborted !== true) {
        const api = this.apiOf(node)
        if (await isConnectedTo(api, bootstrap.peerId, token, signal) && (node.placement?.reach !== 'nat' || await holdsRelayReservation(api, token, signal))) {
          onProgress({ stage: 'bootstrap', connected: ++connected, total: others.length })
          return
        }
        if (Date.now() + BOOTSTRAP_POLL_INTERVAL > deadline) {
          waiting.push(node)
          return
        }
        await sleep(BOOTSTRAP_POLL_INTERVAL, signal)
      }
    }))
    if (signal?.aborted === true) throw new OctetError('TESTNET_NOT_READY', 'aborted while waiting for the nodes to connect to node-0')
    if (waiting.length > 0) {
      throw new OctetError('TESTNET_NOT_READY', `after ${BOOTSTRAP_READY_TIMEOUT / SECOND} s, ${waiting.map(n => n.name).join(', ')} still not connected to ${bootstrap.name}; see the daemons' logs in ${this.options.dir}`)
    }
  }

  /** How to reach a node's API from here: its socket in a NAT testnet (the URL is another namespace's loopback), else its URL. */
  private apiOf (node: TestnetNode): ApiFetch {
    return node.apiSocket != null && node.placement != null ? socketFetch(node.apiSocket) : urlFetch(node.apiUrl)
  }

  /** SIGTERM to every daemon, SIGKILL to any still alive after a grace period, then the namespaces go. Idempotent. */
  async stop (): Promise<void> {
    this.stopping ??= Promise.all(this.running.map(terminate)).then(async () => { await this.topology?.destroy() })
    await this.stopping
  }
}

function isAlive (child: ChildProcess): boolean {
  return child.exitCode == null && child.signalCode == null
}

/** SIGTERM, SIGKILL after STOP_TIMEOUT; resolves once the daemon exited and its log is closed. */
async function terminate ({ child, log }: Running): Promise<void> {
  if (isAlive(child)) {
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT)
    await exited
    clearTimeout(timer)
  }
  if (!log.writableEnded) log.end()
}

function stoppingError (name: string): OctetError {
  return new OctetError('TESTNET_NODE_FAILED', `cannot start ${name}: the testnet is stopping`)
}

/** A node's TCP addresses (not WebSockets), for others to bootstrap from. */
function tcpAddresses (node: TestnetNode): string[] {
  return node.addresses.filter(a => a.includes('/tcp/') && !a.includes('/ws'))
}

/** Resolves after `ms`, or at once when `signal` aborts. */
async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  await delayFor(ms, undefined, { signal }).catch(() => {})
}

async function lookup (api: ApiFetch, peerId: string, token: string, signal?: AbortSignal): Promise<boolean> {
  const timeout = AbortSignal.timeout(LOOKUP_TIMEOUT)
  try {
    const res = await api(`/v1/dht/peers/${peerId}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: signal == null ? timeout : AbortSignal.any([signal, timeout])
    })
    await res.arrayBuffer()
    return res.ok
  } catch {
    return false
  }
}

/** Whether the node behind `api` lists `peerId` among its connected peers. */
async function holdsRelayReservation (api: ApiFetch, token: string, signal?: AbortSignal): Promise<boolean> {
  const timeout = AbortSignal.timeout(LOOKUP_TIMEOUT)
  try {
    const res = await api('/v1/identity', {
      headers: { authorization: `Bearer ${token}` },
      signal: signal == null ? timeout : AbortSignal.any([signal, timeout])
    })
    if (!res.ok) return false
    const { relayAddresses } = await res.json() as { relayAddresses?: string[] }
    return (relayAddresses?.length ?? 0) > 0
  } catch {
    return false
  }
}

async function isConnectedTo (api: ApiFetch, peerId: string, token: string, signal?: AbortSignal): Promise<boolean> {
  const timeout = AbortSignal.timeout(LOOKUP_TIMEOUT)
  try {
    const res = await api('/v1/peers', {
      headers: { authorization: `Bearer ${token}` },
      signal: signal == null ? timeout : AbortSignal.any([signal, timeout])
    })
    if (!res.ok) return false
    const { peers } = await res.json() as { peers: Array<{ peerId: string }> }
    return peers.some(p => p.peerId === peerId)
  } catch {
    return false
  }
}
