/**
 * The NAT variant's wiring: a network namespace per daemon (node-0 and a quarter of the
 * others on public hosts, every other node alone behind a NAT router), built on netns.ts's
 * Topology. The testnet asks it whether the variant can run here, where node i runs and how
 * others see it, and to spawn node i in its namespace.
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { resolve } from 'node:path'
import { UNIX_SOCKET_PATH_MAX, fitsUnixSocket } from '../api-socket.js'
import { dataDirPaths } from '../datadir.js'
import { OctetError } from '../errors.js'
import { assertNetnsSupported } from './netns-host.js'
import { Topology, type NetHost } from './netns.js'
import type { TestnetPlacement, TestnetProgress } from './types.js'

export class NatNetwork {
  /** `hosts`: the host of each node, by index */
  private constructor (private readonly topology: Topology, private readonly hosts: NetHost[]) {}

  /** How many of `nodes` a NAT testnet puts on public hosts: node-0 and a quarter of the rest, at least one. */
  static publicShare (nodes: number): number {
    return Math.max(1, Math.ceil(nodes / 4))
  }

  /**
   * Throws what a NAT testnet lacks here, before anything starts: NETNS_UNSUPPORTED (not Linux,
   * not root, no iproute2 or iptables), or INVALID_CONFIG for a --dir whose daemons' socket
   * paths would be too long (every daemon is reached through its socket).
   */
  static check (nodes: number, dir: string): void {
    const longest = dataDirPaths(resolve(dir, `node-${nodes - 1}`)).apiSocket
    if (!fitsUnixSocket(longest)) {
      throw new OctetError('INVALID_CONFIG', `--nat reaches each daemon through <data dir>/api.sock, and ${longest} is longer than a Unix socket path may be (${UNIX_SOCKET_PATH_MAX} bytes); choose a shorter --dir`)
    }
    assertNetnsSupported()
  }

  /**
   * The topology of a NAT testnet. One home per NATed node rather than several nodes per home:
   * then every pair of NATed nodes has two NATs between them, the case relays and hole
   * punching exist for, and no pair can fall back on a shared LAN (with mDNS off they would
   * not find each other there anyway). A router costs one more namespace, about 10 ms.
   */
  static async create (options: { nodes: number, dir: string, publicNet?: string }, onProgress: (p: TestnetProgress) => void, signal?: AbortSignal): Promise<NatNetwork> {
    const { nodes } = options
    NatNetwork.check(nodes, options.dir)
    const publicHosts = NatNetwork.publicShare(nodes)
    const startedAt = Date.now()
    const topology = await Topology.create({ publicHosts, homes: Array.from({ length: nodes - publicHosts }, () => ({ hosts: 1 })) }, { signal, publicNet: options.publicNet })
    const hosts = [...topology.publicHosts, ...topology.homes.map(home => home.hosts[0] as NetHost)]
    onProgress({ stage: 'topology', publicHosts, homes: nodes - publicHosts, elapsedMs: Date.now() - startedAt })
    return new NatNetwork(topology, hosts)
  }

  placement (index: number): TestnetPlacement | undefined {
    const host = this.hosts[index]
    if (host == null) return undefined
    const router = host.home != null ? this.topology.homes[host.home]?.router : undefined
    return { reach: host.kind === 'public' ? 'public' : 'nat', host: host.name, namespace: host.namespace, address: host.address, seenAs: router?.address ?? host.address }
  }

  /** Runs node `index`'s command in its namespace (see Topology.spawn); undefined for a node the topology has no host for. */
  spawn (index: number, command: string, args: string[], options: SpawnOptions): ChildProcess | undefined {
    const host = this.hosts[index]
    return host == null ? undefined : this.topology.spawn(host, command, args, options)
  }

  /** Stops what still runs in the namespaces and removes them. */
  async destroy (): Promise<void> {
    await this.topology.destroy()
  }
}
