import { SECOND } from '../units.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import { availableParallelism } from 'node:os'
import { setTimeout as delayFor } from 'node:timers/promises'
import { OctetError } from '../errors.js'
import { dataDirPaths } from '../datadir.js'
import type { ReadyMessage } from '../daemon.js'
import { UNIX_SOCKET_PATH_MAX, fitsUnixSocket, socketFetch, urlFetch, type ApiFetch } from '../api-socket.js'
import { Topology, type NetHost } from './netns.js'
import { assertNetnsSupported } from './netns-host.js'

/**
 * How long one daemon may take from spawn to ready. Normally 1–2 s; measured while starting
 * 50 on the 2-core machine with other work on it (load average above 30), the last ones took
 * more than 30 s: loading Node and the module graph is slow on a starved CPU.
 */
export const NODE_START_TIMEOUT = 60 * SECOND
/** The least time readiness may take before the testnet gives up; more for many nodes (readyTimeout). */
export const DHT_READY_TIMEOUT = 60 * SECOND
/** How long every node of a NAT testnet has to connect to the bootstrap node once all are up. */
export const BOOTSTRAP_READY_TIMEOUT = 30 * SECOND
/** Pause between two looks at a node's peers (a local socket round trip: cheap). */
const BOOTSTRAP_POLL_INTERVAL = 100

/**
 * CPU time a readiness lookup may cost across the daemons it touches (the HTTP request, the DHT
 * walk, the Noise handshake and identify of the connection it ends in). Measured ~150 ms on
 * 2 cores (14 nodes, 182 lookups in 27 s); at 50 nodes the daemons' own background work (DHT
 * self-queries, mailbox collection, prekey publishing, gossipsub) took the whole machine and
 * 350 lookups did not finish in 148 s at 500 ms, so 1 s each. The deadline beyond
 * DHT_READY_TIMEOUT grows by this per lookup, divided among the CPUs, since the lookups run a
 * bounded number at a time and so take time in proportion to their count.
 */
export const DHT_READY_CPU_TIME_PER_LOOKUP = SECOND
/** Up to this many nodes, readiness checks every ordered pair; beyond, rounds (see waitForDht). */
export const FULL_CHECK_MAX_NODES = 16
/** Daemons started at once per CPU (node-0 starts alone first). */
export const LAUNCH_CONCURRENCY_PER_CPU = 2
/** Readiness lookups in flight per CPU. */
export const LOOKUP_CONCURRENCY_PER_CPU = 4
const STOP_TIMEOUT = 10 * SECOND
/**
 * One readiness lookup over HTTP: longer than the daemon's own DHT lookup timeout (15 s), so a
 * slow walk on a busy machine ends with the daemon's answer instead of being cut off at 10 s.
 */
const LOOKUP_TIMEOUT = 20 * SECOND
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
  | { stage: 'topology', publicHosts: number, homes: number, elapsedMs: number }
  | { stage: 'nodes-up', elapsedMs: number }
  | { stage: 'bootstrap', connected: number, total: number }
  | { stage: 'dht', found: number, total: number, failedAttempts: number, allPairs: boolean }
  | { stage: 'ready', elapsedMs: number, lookups: number, allPairs: boolean }

/** One DHT lookup of the readiness check, retried until it succeeds. */
interface Pair {
  from: TestnetNode
  to: TestnetNode
  failures: number
  /** ms since the epoch before which it is not retried */
  notBefore: number
}

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
 * N real daemons as child processes on 127.0.0.1, mDNS off; each bootstraps
 * from the first and from one other node already up. Ready once the nodes
 * found each other through DHT queries (every pair up to FULL_CHECK_MAX_NODES). Single nodes can be stopped and started
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
      // a few at a time: 49 daemons starting at once on 2 cores each took longer than the
      // start timeout to load, and a bootstrap peer busy with that answered nobody in time
      await forEachBounded(Array.from({ length: nodes - 1 }, (_, k) => k + 1), launchConcurrency(), async index => {
        // node-0 and one other node already up: node-0 alone, busy with the handshakes of every
        // newcomer, let a 50-node start's later daemons time out dialling it (10 s)
        // in a NAT testnet only a public node can be dialled from every home
        const up = this.running.filter(r => r.index !== 0 && r.info != null && isAlive(r.child) && r.info.placement?.reach !== 'nat')
        const other = up[Math.floor(Math.random() * up.length)]?.info
        const node = await this.launch(index, other == null ? bootstrap : [...bootstrap, ...tcpAddresses(other)], signal)
        onProgress({ stage: 'node-started', node, started: ++started, total: nodes })
      })
      // keep the table in node order whatever order they came up in
      this.running.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
      onProgress({ stage: 'nodes-up', elapsedMs: Date.now() - startedAt })
      if (this.options.nat === true) await this.waitForBootstrap(onProgress, signal)
      else await this.waitForDht(onProgress, signal)
    } catch (err) {
      await this.stop()
      throw err
    }
    const lookups = readinessOffsets(nodes).length * nodes
    onProgress({ stage: 'ready', elapsedMs: Date.now() - startedAt, lookups, allPairs: lookups === nodes * (nodes - 1) })
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
   * Nodes look each other up in the DHT: every ordered pair up to FULL_CHECK_MAX_NODES nodes;
   * beyond, rounds of n lookups (round k: node i looks up node i+k, k = 1, 2, 4, … and n/2),
   * in which every node searches once and is found once. Every pair costs a DHT walk that
   * ends in a new Noise connection: measured on this 2-core machine, 14 nodes' 182 lookups took
   * 27 s, and 870 for 30 nodes ran at ~3 s each with other work on the machine — n·(n−1)
   * grows past any sensible wait (2,450 pairs at 50 nodes), while the rounds still show every
   * node both searching and being found at several distances. `dht` progress says which.
   * Lookups run at most LOOKUP_CONCURRENCY_PER_CPU per CPU at a time: all at once (870 HTTP
   * requests for 30 nodes) starved the daemons on 2 cores so badly that a lookup or even
   * GET /v1/peers took more than 10 s to answer, and 863 of 870 still failed after 60 s. A
   * failed lookup goes back into the queue after a pause that doubles per failure, so the
   * others go on meanwhile. The deadline grows with the number of lookups (readyTimeout).
   */
  private async waitForDht (onProgress: (p: TestnetProgress) => void, signal?: AbortSignal): Promise<void> {
    const nodes = this.nodes
    const n = nodes.length
    const pairs: Pair[] = []
    for (const k of readinessOffsets(n)) {
      for (let i = 0; i < n; i++) pairs.push({ from: nodes[i] as TestnetNode, to: nodes[(i + k) % n] as TestnetNode, failures: 0, notBefore: 0 })
    }
    const total = pairs.length
    const timeoutMs = readyTimeout(total)
    const deadline = Date.now() + timeoutMs
    const tokens = new Map<string, string>()
    for (const node of nodes) tokens.set(node.name, (await readFile(dataDirPaths(node.dataDir).token, 'utf8')).trim())
    let found = 0
    let failedAttempts = 0
    let reportedAt = Date.now()
    onProgress({ stage: 'dht', found, total, failedAttempts, allPairs: total === n * (n - 1) })
    const queue = pairs
    const worker = async (): Promise<void> => {
      while (signal?.aborted !== true && Date.now() < deadline) {
        const now = Date.now()
        const index = queue.findIndex(p => p.notBefore <= now)
        if (index === -1) {
          if (queue.length === 0) return
          // only pairs waiting out their retry pause are left
          await sleep(Math.min(...queue.map(p => p.notBefore)) - now, signal)
          continue
        }
        const [pair] = queue.splice(index, 1) as [Pair]
        if (await lookup(this.apiOf(pair.from), pair.to.peerId, tokens.get(pair.from.name) ?? '', signal)) {
          found++
          // progress at most once per interval, and always the last
          if (found === total || Date.now() - reportedAt >= DHT_PROGRESS_INTERVAL) {
            reportedAt = Date.now()
            onProgress({ stage: 'dht', found, total, failedAttempts, allPairs: total === n * (n - 1) })
          }
        } else {
          failedAttempts++
          pair.notBefore = Date.now() + Math.min(DHT_RETRY_DELAY * 2 ** pair.failures, DHT_RETRY_DELAY_MAX)
          pair.failures++
          queue.push(pair)
        }
      }
    }
    await Promise.all(Array.from({ length: lookupConcurrency() }, worker))
    if (signal?.aborted === true) throw new OctetError('TESTNET_NOT_READY', 'aborted while waiting for the DHT')
    if (found < total) {
      onProgress({ stage: 'dht', found, total, failedAttempts, allPairs: total === n * (n - 1) })
      const example = queue[0]
      throw new OctetError('TESTNET_NOT_READY', `after ${Math.round(timeoutMs / SECOND)} s, ${total - found} of ${total} DHT lookups still fail (e.g. ${example?.from.name} cannot find ${example?.to.name}); see the daemons' logs in ${this.options.dir}`)
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

/** How long `lookups` readiness lookups may take: at least DHT_READY_TIMEOUT, more the more lookups run a bounded number at a time. */
export function readyTimeout (lookups: number): number {
  return DHT_READY_TIMEOUT + Math.round(lookups * DHT_READY_CPU_TIME_PER_LOOKUP / availableParallelism())
}

/**
 * Ring offsets of the readiness rounds for n nodes: 1 … n−1 (every ordered pair) up to
 * FULL_CHECK_MAX_NODES nodes; beyond, the powers of two below n and n/2, so each node looks
 * up nodes near and far along the ring (launch order, unrelated to DHT distance).
 */
export function readinessOffsets (n: number): number[] {
  if (n <= FULL_CHECK_MAX_NODES) return Array.from({ length: Math.max(0, n - 1) }, (_, i) => i + 1)
  const offsets = new Set<number>()
  for (let k = 1; k < n; k *= 2) offsets.add(k)
  offsets.add(Math.floor(n / 2))
  return [...offsets].sort((a, b) => a - b)
}

function launchConcurrency (): number {
  return Math.max(2, LAUNCH_CONCURRENCY_PER_CPU * availableParallelism())
}

function lookupConcurrency (): number {
  return Math.max(4, LOOKUP_CONCURRENCY_PER_CPU * availableParallelism())
}

/** Runs `fn` over `items`, at most `limit` at a time; the first failure rejects (the others run on to their end). */
async function forEachBounded<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let failed = false
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (!failed && next < items.length) {
      const item = items[next++] as T
      try {
        await fn(item)
      } catch (err) {
        failed = true
        throw err
      }
    }
  }))
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

/** Whether the node behind `api` has a relay address: a relay holds a reservation for it. */
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

/** Whether the node behind `api` lists `peerId` among its connected peers. */
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
