import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import { OctetError } from '../errors.js'
import { SECOND } from '../units.js'
import {
  NETNS_PREFIX, assertNetnsSupported, deleteNamespaces, deleteNamespacesSync, mustRun,
  pidsInNamespaces, runCommand, signalAll, sweepStaleNamespaces, type CommandResult
} from './netns-host.js'

export { NETNS_PREFIX, netnsUnavailableReason, ownedNamespaces, sweepStaleNamespaces } from './netns-host.js'

/**
 * A small internet in network namespaces, for NAT tests and `octet testnet --nat`:
 *
 *   public segment: a bridge in namespace `<id>-inet`, subnet PUBLIC_NET.0.0/16
 *     ├─ public host k   (`<id>-pub<k>`)   PUBLIC_NET.1.(k+1)
 *     └─ router of home h (`<id>-h<h>r`)   WAN PUBLIC_NET.2.(h+1), LAN 10.1.h.1/24
 *          └─ home LAN: a bridge in the router's namespace
 *               └─ host m of home h (`<id>-h<h>n<m>`)  10.1.h.(m+2), default route via the router
 *
 * Each router masquerades LAN → WAN, forwards replies (conntrack ESTABLISHED,RELATED) and
 * drops every connection that starts outside: a home host can reach public hosts, nobody
 * can reach a home host unless it called first. IP forwarding is on in routers only.
 * Nothing is created in the host's namespace: both ends of every veth pair are made inside
 * namespaces, no route or address is added outside them.
 */

/**
 * First two octets of the public segment (a /16). 198.18.0.0/15 is reserved for network
 * benchmarks (RFC 2544) and never routed on the internet, so it collides with no real
 * network. libp2p counts it as private (so AutoNAT will not test such addresses); pass
 * `publicNet` to pick another range when that matters.
 */
export const DEFAULT_PUBLIC_NET = '198.18'
/** First two octets of the home LANs: home h is 10.1.h.0/24. Homes may reuse a range in real life; distinct ones keep logs readable. */
const HOME_NET = '10.1'
/** At most this many public hosts, homes, and hosts per home (one octet each). */
export const TOPOLOGY_MAX = 250
/** Time a spawned process gets to exit after SIGTERM before destroy() sends SIGKILL. */
const STOP_GRACE = 5 * SECOND
/** Interface names: inside each namespace, so the same names in every run. */
const IF = { bridge: 'br0', wan: 'wan0', lan: 'lan0', eth: 'eth0' } as const

export interface TopologySpec {
  /** hosts on the public segment, reachable by everyone */
  publicHosts: number
  /** one entry per home: how many hosts sit on its LAN, behind its NAT router */
  homes: Array<{ hosts: number }>
}

export interface TopologyOptions {
  signal?: AbortSignal
  /** first two octets of the public /16 (default DEFAULT_PUBLIC_NET) */
  publicNet?: string
  /**
   * Routers reject unsolicited UDP from the WAN to themselves (port unreachable) instead of
   * letting their stack answer it: what UDP hole punching (WebRTC) needs, see natRules().
   * Default off, so the relay-only tests run on the topology they were written for.
   */
  rejectUnsolicitedUdp?: boolean
  /**
   * Public hosts and routers each in a /8 of its own, on addresses libp2p counts as public
   * (see spreadAddress), instead of one private-range /16. AutoNAT only tests public
   * addresses, and only counts a confirmation once per first octet of the peer that gave it
   * (four needed): this is the internet as AutoNAT needs to see it. The addresses exist only
   * inside the topology's namespaces. Exclusive with publicNet.
   */
  spreadPublic?: boolean
}

export interface NetHost {
  /** `pub<k>` for public hosts, `home<h>-<m>` for home hosts, `home<h>-router` for routers */
  name: string
  /** the network namespace it runs in: `ip netns exec <namespace> …` */
  namespace: string
  /** its IPv4 address: public for public hosts and routers (WAN), private for home hosts */
  address: string
  kind: 'public' | 'home' | 'router'
  /** the home it belongs to (home hosts and routers) */
  home?: number
}

export interface Home {
  index: number
  /** the router: `address` is its public (WAN) address, the one home hosts are seen from */
  router: NetHost & { lanAddress: string }
  /** the LAN, e.g. 10.1.0.0/24 */
  lan: string
  hosts: NetHost[]
}

let topologiesMade = 0
/** Topologies not yet destroyed, for the exit and signal hooks. */
const live = new Set<Topology>()

export class Topology {
  readonly id: string
  readonly publicHosts: NetHost[]
  readonly homes: Home[]
  /** the namespace holding the public segment's bridge */
  readonly internet: string
  private readonly children = new Set<ChildProcess>()
  private destroying: Promise<void> | undefined

  /** the prefix length of public addresses: the shared /16, or /32 each when spread (every destination is then on-link) */
  private readonly publicPrefix: number

  private constructor (spec: TopologySpec, publicNet: string, private readonly rejectUnsolicitedUdp: boolean, spread: boolean) {
    this.id = `${NETNS_PREFIX}-${process.pid}-${++topologiesMade}`
    this.internet = `${this.id}-inet`
    this.publicPrefix = spread ? 32 : 16
    const publicAddress = (segment: 1 | 2, index: number): string => spread
      ? spreadAddress(segment === 1 ? index : spec.publicHosts + index)
      : `${publicNet}.${segment}.${index + 1}`
    this.publicHosts = Array.from({ length: spec.publicHosts }, (_, k) => ({
      name: `pub${k}`, namespace: `${this.id}-pub${k}`, address: publicAddress(1, k), kind: 'public' as const
    }))
    this.homes = spec.homes.map((home, h) => ({
      index: h,
      lan: `${HOME_NET}.${h}.0/24`,
      router: { name: `home${h}-router`, namespace: `${this.id}-h${h}r`, address: publicAddress(2, h), lanAddress: `${HOME_NET}.${h}.1`, kind: 'router' as const, home: h },
      hosts: Array.from({ length: home.hosts }, (_, m) => ({
        name: `home${h}-${m}`, namespace: `${this.id}-h${h}n${m}`, address: `${HOME_NET}.${h}.${m + 2}`, kind: 'home' as const, home: h
      }))
    }))
  }

  /**
   * Builds the topology (Linux, root, iproute2 and iptables; NETNS_UNSUPPORTED says what is
   * missing). Namespaces that earlier runs left behind when they were killed are swept first.
   * A failure or an abort half-way removes what was built.
   */
  static async create (spec: TopologySpec, options: TopologyOptions = {}): Promise<Topology> {
    validateSpec(spec)
    const publicNet = options.publicNet ?? DEFAULT_PUBLIC_NET
    if (!/^\d{1,3}\.\d{1,3}$/.test(publicNet)) throw new OctetError('INVALID_CONFIG', `publicNet must be the first two octets of a /16, like ${DEFAULT_PUBLIC_NET}; got "${publicNet}"`)
    if (options.spreadPublic === true && options.publicNet != null) throw new OctetError('INVALID_CONFIG', 'a topology has either spreadPublic or publicNet, not both')
    assertNetnsSupported()
    await sweepStaleNamespaces()
    const topology = new Topology(spec, publicNet, options.rejectUnsolicitedUdp === true, options.spreadPublic === true)
    live.add(topology)
    installHooks()
    try {
      await topology.build(options.signal)
    } catch (err) {
      await topology.destroy()
      throw err
    }
    return topology
  }

  /** Every host that runs programs: public hosts, then home hosts in home order. */
  get hosts (): NetHost[] {
    return [...this.publicHosts, ...this.homes.flatMap(h => h.hosts)]
  }

  /** Every namespace of this topology, the internet and routers included. */
  get namespaces (): string[] {
    return [this.internet, ...this.publicHosts.map(h => h.namespace), ...this.homes.flatMap(h => [h.router.namespace, ...h.hosts.map(n => n.namespace)])]
  }

  /** A host (or router) by name: `pub0`, `home1-0`, `home1-router`. */
  host (name: string): NetHost {
    const found = [...this.hosts, ...this.homes.map(h => h.router)].find(h => h.name === name)
    if (found == null) throw new OctetError('NETNS_FAILED', `no host named ${name} in topology ${this.id} (${this.hosts.map(h => h.name).join(', ')})`)
    return found
  }

  private async build (signal?: AbortSignal): Promise<void> {
    const step = async (run: () => Promise<unknown>): Promise<void> => {
      if (signal?.aborted === true) throw new OctetError('NETNS_FAILED', `building topology ${this.id}: aborted`)
      await run()
    }
    await step(async () => await mustRun('ip', ['-batch', '-'], { input: lines(this.namespaces.map(ns => `netns add ${ns}`)), signal }))
    // the public segment: both ends of each veth are created inside namespaces, never in the host's
    await step(async () => await ipIn(this.internet, [
      'link set lo up',
      `link add ${IF.bridge} type bridge`,
      `link set ${IF.bridge} up`,
      ...this.publicHosts.flatMap((host, k) => port(`p${k}`, IF.eth, host.namespace, IF.bridge)),
      ...this.homes.flatMap((home, h) => port(`r${h}`, IF.wan, home.router.namespace, IF.bridge))
    ], signal))
    await step(async () => await Promise.all([
      ...this.publicHosts.map(async host => await ipIn(host.namespace, [
        'link set lo up', `addr add ${host.address}/${this.publicPrefix} dev ${IF.eth}`, `link set ${IF.eth} up`,
        ...this.onLinkRoute(IF.eth)
      ], signal)),
      ...this.homes.map(async home => await this.buildHome(home, signal))
    ]))
  }

  private async buildHome (home: Home, signal?: AbortSignal): Promise<void> {
    const { router } = home
    await ipIn(router.namespace, [
      'link set lo up',
      `addr add ${router.address}/${this.publicPrefix} dev ${IF.wan}`,
      `link set ${IF.wan} up`,
      ...this.onLinkRoute(IF.wan),
      `link add ${IF.lan} type bridge`,
      `addr add ${router.lanAddress}/24 dev ${IF.lan}`,
      `link set ${IF.lan} up`,
      ...home.hosts.flatMap((host, m) => port(`h${m}`, IF.eth, host.namespace, IF.lan))
    ], signal)
    await Promise.all([
      // forwarding is a per-namespace setting: on here, and nowhere else. Written to /proc by a
      // shell in the namespace rather than with sysctl, which minimal systems lack (procps)
      mustRun('ip', ['netns', 'exec', router.namespace, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward'], { signal }),
      mustRun('ip', ['netns', 'exec', router.namespace, 'iptables-restore'], { input: natRules(this.rejectUnsolicitedUdp), signal }),
      ...home.hosts.map(async host => await ipIn(host.namespace, [
        'link set lo up',
        `addr add ${host.address}/24 dev ${IF.eth}`,
        `link set ${IF.eth} up`,
        `route add default via ${router.lanAddress}`
      ], signal))
    ])
  }

  /** Spread addresses share no subnet: the whole internet is one link, every address on it reached directly. */
  private onLinkRoute (dev: string): string[] {
    return this.publicPrefix === 32 ? [`route add default dev ${dev}`] : []
  }

  /**
   * Starts `command` inside `host`'s namespace (`ip netns exec`, which execs it: the child's
   * pid is the program's own, so signals reach it directly, and an IPC channel in `stdio`
   * works as with a plain spawn). Tracked: destroy() stops it.
   */
  spawn (host: NetHost | string, command: string, args: string[] = [], options: SpawnOptions = {}): ChildProcess {
    if (this.destroying != null) throw new OctetError('NETNS_FAILED', `topology ${this.id} is being destroyed`)
    const { namespace } = typeof host === 'string' ? this.host(host) : host
    const child = spawn('ip', ['netns', 'exec', namespace, command, ...args], options)
    this.children.add(child)
    child.once('exit', () => { this.children.delete(child) })
    // a program that cannot start surfaces in its exit code; this keeps the 'error' event from throwing
    child.on('error', () => {})
    return child
  }

  /** Runs `command` inside `host`'s namespace to its end and gives its exit code and output. */
  async exec (host: NetHost | string, command: string, args: string[] = [], options: { input?: string, signal?: AbortSignal, timeoutMs?: number } = {}): Promise<CommandResult> {
    const { namespace } = typeof host === 'string' ? this.host(host) : host
    return await runCommand('ip', ['netns', 'exec', namespace, command, ...args], options)
  }

  /**
   * Stops what runs inside (SIGTERM to the processes spawn() started, SIGKILL after a grace
   * period; SIGKILL to anything else still inside), then deletes every namespace, which takes
   * their interfaces, bridges, addresses and rules with them. Idempotent.
   */
  async destroy (): Promise<void> {
    this.destroying ??= (async () => {
      const running = [...this.children].filter(c => c.exitCode == null && c.signalCode == null)
      await Promise.all(running.map(async child => {
        const exited = once(child, 'exit')
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE)
        await exited
        clearTimeout(timer)
      }))
      signalAll(pidsInNamespaces(this.namespaces), 'SIGKILL')
      await deleteNamespaces(this.namespaces)
      live.delete(this)
    })()
    await this.destroying
  }

  /**
   * For an exit hook, where nothing asynchronous runs any more: SIGTERM to everything inside
   * (a daemon shuts down by itself once its supervisor is gone), then the names are deleted.
   */
  destroySync (): void {
    signalAll(pidsInNamespaces(this.namespaces), 'SIGTERM')
    deleteNamespacesSync(this.namespaces)
    live.delete(this)
  }
}

/**
 * First octets for spread public addresses: 11–99, which libp2p's isPrivate() counts as public
 * (10 is private; 100 holds carrier-grade NAT's 100.64/10). Address i is `<octet>.<n>.0.1`,
 * the n-th round through the octets, so 89 hosts get a /8 each before any two share one.
 */
const SPREAD_OCTETS = Array.from({ length: 89 }, (_, i) => i + 11)

export function spreadAddress (index: number): string {
  return `${SPREAD_OCTETS[index % SPREAD_OCTETS.length] ?? 11}.${Math.floor(index / SPREAD_OCTETS.length)}.0.1`
}

function validateSpec (spec: TopologySpec): void {
  const counts = [spec.publicHosts, spec.homes.length, ...spec.homes.map(h => h.hosts)]
  if (counts.some(n => !Number.isInteger(n) || n < 0 || n > TOPOLOGY_MAX)) {
    throw new OctetError('INVALID_CONFIG', `a topology has 0–${TOPOLOGY_MAX} public hosts, homes, and hosts per home; got ${JSON.stringify(spec)}`)
  }
}

async function ipIn (namespace: string, commands: string[], signal?: AbortSignal): Promise<void> {
  await mustRun('ip', ['-n', namespace, '-batch', '-'], { input: lines(commands), signal })
}

/** A veth pair from the current namespace's bridge to `peerNamespace`, where its end is named `peerName`. */
function port (name: string, peerName: string, peerNamespace: string, bridge: string): string[] {
  return [
    `link add ${name} type veth peer name ${peerName} netns ${peerNamespace}`,
    `link set ${name} master ${bridge}`,
    `link set ${name} up`
  ]
}

function lines (commands: string[]): string {
  return commands.map(c => c + '\n').join('')
}

/**
 * A home router's rules: masquerade what leaves by the WAN; forward LAN → WAN and the replies
 * to it; drop the rest, above all connections that start on the WAN side. LAN ↔ LAN is
 * accepted too: with br_netfilter loaded, frames bridged between two hosts of one home pass
 * through FORWARD as well.
 */
function natRules (rejectUnsolicitedUdp: boolean): string {
  return lines([
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':FORWARD DROP [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    // the router itself takes no unsolicited UDP from the WAN. Accepted (and answered by the
    // stack with a port unreachable), a peer's early UDP hole-punching packet to our mapped port
    // would leave a confirmed conntrack entry for exactly the tuple the outgoing mapping needs;
    // MASQUERADE would then pick another port and WebRTC's ICE never connects. Rejected here,
    // the packet dies before conntrack confirms its entry; the sender still hears "unreachable".
    // TCP is left as it was (the stack answers with a reset): nothing punches TCP from Node
    ...(rejectUnsolicitedUdp
      ? [`-A INPUT -i ${IF.wan} -p udp -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`, `-A INPUT -i ${IF.wan} -p udp -j REJECT`]
      : []),
    '-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
    `-A FORWARD -i ${IF.lan} -o ${IF.wan} -j ACCEPT`,
    `-A FORWARD -i ${IF.lan} -o ${IF.lan} -j ACCEPT`,
    'COMMIT',
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    `-A POSTROUTING -o ${IF.wan} -j MASQUERADE`,
    'COMMIT'
  ])
}

let hooksInstalled = false
const HANDLED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/**
 * Namespaces outlive the process that made them, so every way out removes them: a normal
 * exit or an uncaught exception ('exit'), and a signal nobody else handles (then the signal
 * is raised again, so the process ends as it would have). A program that handles the signal
 * itself (the testnet stops its daemons first) calls destroy() on its own; 'exit' is the
 * backstop. SIGKILL cannot be caught: sweepStaleNamespaces() at the next start cleans up.
 */
function installHooks (): void {
  if (hooksInstalled) return
  hooksInstalled = true
  process.on('exit', () => { for (const topology of [...live]) topology.destroySync() })
  for (const signal of HANDLED_SIGNALS) {
    const onSignal = (): void => {
      // another listener: the program handles the signal and calls destroy() itself
      if (process.listenerCount(signal) > 1) return
      for (const topology of [...live]) topology.destroySync()
      // without a listener the signal's default action applies again: the process dies of it
      process.off(signal, onSignal)
      process.kill(process.pid, signal)
    }
    // first in line: a program's `once` listener is removed before it is called, so listeners
    // after it could not see it any more; before it, this one does
    process.prependListener(signal, onSignal)
  }
}
