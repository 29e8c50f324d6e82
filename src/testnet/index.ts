/**
 * The testnet: N real daemons started, supervised, restarted and stopped as one network.
 * Its parts: daemon-process.ts (one daemon as a child process), readiness.ts (when the
 * network is ready), nat.ts (the NAT variant's namespaces), types.ts (what callers see).
 */
import { spawn } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { availableParallelism } from 'node:os'
import { OctetError } from '../errors.js'
import { socketFetch, urlFetch, type ApiFetch } from '../api-socket.js'
import { daemonArgs, isAlive, supervise, terminate, waitForReady, type Running } from './daemon-process.js'
import { NatNetwork } from './nat.js'
import { readinessOffsets, waitForBootstrap, waitForDht } from './readiness.js'
import type { TestnetNode, TestnetOptions, TestnetProgress } from './types.js'

/** Daemons started at once per CPU (node-0 starts alone first). */
export const LAUNCH_CONCURRENCY_PER_CPU = 2
/** Ports per node when a base port is given: TCP, WebSockets, API. */
export const PORTS_PER_NODE = 3

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
  /** NAT testnets: the namespaces the nodes run in */
  private nat: NatNetwork | undefined

  constructor (private readonly options: TestnetOptions) {}

  /** How many of `nodes` a NAT testnet puts on public hosts: node-0 and a quarter of the rest, at least one. */
  static publicShare (nodes: number): number {
    return NatNetwork.publicShare(nodes)
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
      if (this.options.nat === true) this.nat = await NatNetwork.create(this.options, onProgress, signal)
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
      const check = { nodes: this.nodes, apiOf: (node: TestnetNode) => this.apiOf(node), onProgress, dir: this.options.dir, signal }
      if (this.options.nat === true) await waitForBootstrap(check)
      else await waitForDht(check)
    } catch (err) {
      await this.stop()
      throw err
    }
    const lookups = readinessOffsets(nodes).length * nodes
    onProgress({ stage: 'ready', elapsedMs: Date.now() - startedAt, lookups, allPairs: lookups === nodes * (nodes - 1) })
    return this.nodes
  }

  /**
   * Throws what a NAT testnet lacks here, before anything starts: NETNS_UNSUPPORTED (not Linux,
   * not root, no iproute2 or iptables), or INVALID_CONFIG for a --dir whose daemons' socket
   * paths would be too long (every daemon is reached through its socket).
   */
  checkNat (): void {
    NatNetwork.check(this.options.nodes, this.options.dir)
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
    const spawnOptions = {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'] as Array<'ignore' | 'pipe' | 'ipc'>,
      env: { ...process.env, ...this.options.env, OCTET_DATA_DIR: undefined, OCTET_LISTEN: undefined, OCTET_API: undefined, OCTET_BOOTSTRAP: undefined }
    }
    const placement = this.nat?.placement(index)
    const base = this.options.basePort
    const port = (offset: number): number => base === 0 ? 0 : base + index * PORTS_PER_NODE + offset
    const args = daemonArgs({
      dataDir,
      // in a namespace the node listens on its address there; its API stays on the namespace's own loopback
      ip: placement?.address ?? '127.0.0.1',
      ports: [port(0), port(1), port(2)],
      logLevel: this.options.logLevel ?? 'info',
      publicReach: placement?.reach === 'public',
      bootstrap
    })
    const child = this.nat?.spawn(index, process.execPath, args, spawnOptions) ?? spawn(process.execPath, args, spawnOptions)
    const entry = supervise(name, index, child, logFile)
    const previous = this.running.findIndex(r => r.name === name)
    if (previous === -1) this.running.push(entry)
    else this.running[previous] = entry
    child.once('exit', code => {
      if (this.stopping == null && entry.info != null && !entry.stoppedOnPurpose) {
        for (const listener of this.exitListeners) listener(name, code)
      }
    })

    const ready = await waitForReady(entry, logFile, signal)
    if (this.nat != null && ready.apiSocket == null) {
      throw new OctetError('TESTNET_NODE_FAILED', `${name} serves no api.sock, the only way to its API from outside its namespace; see ${logFile}`)
    }
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

  /** How to reach a node's API from here: its socket in a NAT testnet (the URL is another namespace's loopback), else its URL. */
  /** How to reach a node's API: its socket in a NAT testnet, else its URL. */
  apiOf (node: TestnetNode): ApiFetch {
    return node.apiSocket != null && node.placement != null ? socketFetch(node.apiSocket) : urlFetch(node.apiUrl)
  }

  /** SIGTERM to every daemon, SIGKILL to any still alive after a grace period, then the namespaces go. Idempotent. */
  async stop (): Promise<void> {
    this.stopping ??= Promise.all(this.running.map(terminate)).then(async () => { await this.nat?.destroy() })
    await this.stopping
  }
}

function stoppingError (name: string): OctetError {
  return new OctetError('TESTNET_NODE_FAILED', `cannot start ${name}: the testnet is stopping`)
}

/** A node's TCP addresses (not WebSockets), for others to bootstrap from. */
function tcpAddresses (node: TestnetNode): string[] {
  return node.addresses.filter(a => a.includes('/tcp/') && !a.includes('/ws'))
}

function launchConcurrency (): number {
  return Math.max(2, LAUNCH_CONCURRENCY_PER_CPU * availableParallelism())
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
