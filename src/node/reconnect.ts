import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { backoffDelay, type BackoffPolicy } from '../backoff.js'
import { errorMessage } from '../errors.js'
import type { Logger } from '../logger.js'
import {
  DHT_LOOKUP_TIMEOUT, DIAL_TIMEOUT, MIN_PEERS, RECONNECT_BASE_DELAY, RECONNECT_CHECK_INTERVAL,
  RECONNECT_KNOWN_PEERS_PER_ATTEMPT, RECONNECT_MAX_DELAY, ROUTING_TABLE_ENTRY_WAIT
} from './constants.js'
import { dhtOf, type Dht } from './dht.js'
import type { OctetLibp2p } from './index.js'

/**
 * The reconnect loop: a node with fewer peers than it wants keeps dialling its bootstrap
 * peers and the peers it knew, with exponential backoff and jitter, for as long as it runs.
 *
 * Why: @libp2p/bootstrap dials each bootstrap peer once, one second after start, and
 * libp2p's own reconnect queue only redials peers tagged keep-alive. A daemon started while
 * its bootstrap peer was down, or one whose every connection dropped, stayed alone for good.
 * Known peers come from libp2p's peer store, which lives on the datastore in the data
 * directory, so a restarted daemon has more than its bootstrap list to try.
 */

export type Connectivity = 'isolated' | 'low' | 'ok'

/**
 * connected: at least one new connection; failed: every dial failed; no-new-peers: nothing
 * left to dial that is not connected already (a network smaller than MIN_PEERS + 1).
 */
export type AttemptOutcome = 'connected' | 'failed' | 'no-new-peers'

export interface ReconnectStatus {
  /** distinct peers with an open connection */
  peers: number
  minPeers: number
  connectivity: Connectivity
  bootstrap: string[]
  attempts: number
  /** attempts in a row that brought no new connection (drives the backoff) */
  consecutiveFailures: number
  lastAttemptAt?: number
  lastOutcome?: AttemptOutcome
  /** the first dial error of the last attempt that had one */
  lastError?: string
  lastConnectedAt?: number
  /** when the loop will dial next; absent while the node has the peers it wants */
  nextAttemptAt?: number
  /** the last self-lookup that refilled the DHT routing table after a reconnection */
  routingRefreshAt?: number
  /** peers in the DHT routing table */
  routingTableSize: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: RECONNECT_BASE_DELAY, maxMs: RECONNECT_MAX_DELAY }

export function connectivityOf (peers: number, minPeers: number): Connectivity {
  if (peers === 0) return 'isolated'
  return peers < minPeers ? 'low' : 'ok'
}

/** What to dial: a bootstrap address or a peer the peer store knows addresses of. */
interface Target {
  peerId?: PeerId
  addresses?: Multiaddr[]
  bootstrap: boolean
}

export interface ReconnectInit {
  bootstrap: Multiaddr[]
  log?: Pick<Logger, 'warn' | 'info' | 'debug'>
  minPeers?: number
  backoff?: BackoffPolicy
}

export class Reconnector {
  private readonly controller = new AbortController()
  private readonly minPeers: number
  private readonly backoff: BackoffPolicy
  private timer: NodeJS.Timeout | undefined
  private inFlight: Promise<void> | undefined
  private started = false
  private readonly state: Omit<ReconnectStatus, 'peers' | 'minPeers' | 'connectivity' | 'bootstrap' | 'routingTableSize'> = { attempts: 0, consecutiveFailures: 0 }
  /** the failure last logged as a warning; later ones like it go to debug */
  private warned: string | undefined
  private readonly onConnect = (): void => { this.connected() }
  private readonly onDisconnect = (): void => { this.disconnected() }

  private readonly dht: Dht

  constructor (private readonly libp2p: OctetLibp2p, private readonly init: ReconnectInit) {
    this.dht = dhtOf(libp2p)
    this.minPeers = init.minPeers ?? MIN_PEERS
    this.backoff = init.backoff ?? DEFAULT_BACKOFF
  }

  /** Starts the loop: the first attempt runs at once (the bootstrap module's single dial is not waited for). */
  start (): void {
    if (this.started) return
    this.started = true
    this.libp2p.addEventListener('peer:connect', this.onConnect)
    this.libp2p.addEventListener('peer:disconnect', this.onDisconnect)
    this.schedule(0)
  }

  /** Aborts the dials and the lookup in flight and waits for them. Idempotent. */
  async stop (): Promise<void> {
    this.controller.abort()
    clearTimeout(this.timer)
    this.timer = undefined
    this.state.nextAttemptAt = undefined
    this.libp2p.removeEventListener('peer:connect', this.onConnect)
    this.libp2p.removeEventListener('peer:disconnect', this.onDisconnect)
    await this.inFlight
  }

  status (): ReconnectStatus {
    const peers = this.peerCount()
    return {
      peers,
      minPeers: this.minPeers,
      connectivity: connectivityOf(peers, this.minPeers),
      bootstrap: this.init.bootstrap.map(a => a.toString()),
      routingTableSize: this.dht.routingTableSize(),
      ...this.state,
      // a scheduled check while the node has its peers is not an attempt anyone waits for
      nextAttemptAt: peers < this.minPeers ? this.state.nextAttemptAt : undefined
    }
  }

  private peerCount (): number {
    return this.libp2p.getPeers().length
  }

  private schedule (delayMs: number): void {
    if (this.controller.signal.aborted) return
    clearTimeout(this.timer)
    this.state.nextAttemptAt = Date.now() + delayMs
    this.timer = setTimeout(() => { this.tick() }, delayMs)
    this.timer.unref()
  }

  private tick (): void {
    this.timer = undefined
    if (this.controller.signal.aborted || this.inFlight != null) return
    this.inFlight = (async () => {
      try {
        if (this.peerCount() < this.minPeers) await this.attempt(this.controller.signal)
      } catch (err) {
        // attempt() records dial errors itself; this is a bug or a stop, never a reason to end the loop
        if (!this.controller.signal.aborted) this.init.log?.warn({ err }, 'reconnect attempt failed unexpectedly')
      } finally {
        this.inFlight = undefined
        this.schedule(this.peerCount() < this.minPeers ? backoffDelay(this.state.consecutiveFailures, this.backoff) : RECONNECT_CHECK_INTERVAL)
      }
    })()
  }

  /** Dials the bootstrap peers and some known peers that are not connected, all at once. */
  private async attempt (signal: AbortSignal): Promise<void> {
    const before = this.peerCount()
    const wasIsolated = before === 0
    const targets = await this.targets(signal)
    this.state.attempts++
    this.state.lastAttemptAt = Date.now()
    if (targets.length === 0) {
      this.state.lastOutcome = 'no-new-peers'
      this.state.consecutiveFailures++
      this.init.log?.debug({ peers: before }, 'reconnect: no peer to dial that is not connected already')
      return
    }
    const errors: string[] = []
    let newBootstrap = false
    let connected = 0
    await Promise.all(targets.map(async target => {
      try {
        await this.libp2p.dial(target.addresses ?? target.peerId as PeerId, { signal: AbortSignal.any([signal, AbortSignal.timeout(DIAL_TIMEOUT)]) })
        connected++
        if (target.bootstrap) newBootstrap = true
      } catch (err) {
        if (signal.aborted) return
        errors.push(`${target.addresses?.[0]?.toString() ?? target.peerId?.toString() ?? '?'}: ${errorMessage(err)}`)
      }
    }))
    if (signal.aborted) return
    this.state.lastError = errors[0] ?? this.state.lastError
    if (connected === 0) {
      this.state.lastOutcome = 'failed'
      this.state.consecutiveFailures++
      this.logFailure(targets.length, errors[0] ?? 'no connection')
      return
    }
    this.state.lastOutcome = 'connected'
    this.state.consecutiveFailures = 0
    this.init.log?.debug({ peers: this.peerCount(), dialled: targets.length, connected }, 'reconnect: new connections')
    // a node that was alone, or that is back with a bootstrap peer, has a routing table that
    // does not reflect the network (and peers whose tables lost it): a self-lookup fixes both
    if (wasIsolated || newBootstrap) await this.refreshRoutingTable(signal)
  }

  private logFailure (dialled: number, error: string): void {
    const status = { peers: this.peerCount(), dialled, error, failures: this.state.consecutiveFailures }
    // a warning the first time and when the error changes; the same failure again is debug
    const key = error.replace(/\d+/g, '#')
    if (this.warned !== key) {
      this.warned = key
      this.init.log?.warn(status, 'no connection to any bootstrap or known peer; retrying with backoff')
    } else {
      this.init.log?.debug(status, 'reconnect attempt failed')
    }
  }

  private async targets (signal: AbortSignal): Promise<Target[]> {
    const connected = new Set(this.libp2p.getPeers().map(p => p.toString()))
    const self = this.libp2p.peerId.toString()
    const bootstrapIds = new Set<string>()
    const targets: Target[] = []
    // one target per bootstrap peer, with all its addresses
    const byPeer = new Map<string, Target>()
    for (const address of this.init.bootstrap) {
      const id = address.getComponents().findLast(c => c.name === 'p2p')?.value
      if (id != null) {
        bootstrapIds.add(id)
        if (connected.has(id) || id === self) continue
      }
      const key = id ?? address.toString()
      const target = byPeer.get(key) ?? { addresses: [], bootstrap: true }
      target.addresses?.push(address)
      byPeer.set(key, target)
    }
    targets.push(...byPeer.values())
    const known = await this.libp2p.peerStore.all({ signal })
    const others = known.filter(p => {
      const id = p.id.toString()
      return id !== self && !connected.has(id) && !bootstrapIds.has(id) && p.addresses.length > 0
    })
    for (const peer of shuffle(others).slice(0, RECONNECT_KNOWN_PEERS_PER_ATTEMPT)) targets.push({ peerId: peer.id, bootstrap: false })
    return targets
  }

  /** A self-lookup: fills our routing table and puts us into the tables of the peers closest to us. */
  private async refreshRoutingTable (signal: AbortSignal): Promise<void> {
    const lookup = AbortSignal.any([signal, AbortSignal.timeout(DHT_LOOKUP_TIMEOUT)])
    try {
      // kad-dht adds a peer to its table once identify says it speaks the DHT protocol
      await this.dht.waitForRoutingTable(ROUTING_TABLE_ENTRY_WAIT, lookup)
      const { answered } = await this.dht.walk(this.libp2p.peerId.toMultihash().bytes, lookup)
      this.state.routingRefreshAt = Date.now()
      this.init.log?.debug({ found: answered.size, routingTable: this.dht.routingTableSize() }, 'reconnect: self-lookup refreshed the DHT routing table')
    } catch (err) {
      if (signal.aborted) return
      this.init.log?.debug({ err: errorMessage(err) }, 'reconnect: self-lookup failed; kad-dht retries on its own schedule')
    }
  }

  private connected (): void {
    this.state.lastConnectedAt = Date.now()
    // whoever made the connection (this loop, a peer dialling us, a DHT lookup), say once that it is over
    if (this.warned != null) {
      this.warned = undefined
      this.init.log?.info({ peers: this.peerCount() }, 'connected to the network again')
    }
  }

  private disconnected (): void {
    if (this.controller.signal.aborted) return
    const peers = this.peerCount()
    if (peers >= this.minPeers) return
    // alone again: start over from the shortest pause, whatever the backoff had grown to
    if (peers === 0) this.state.consecutiveFailures = 0
    const delay = backoffDelay(this.state.consecutiveFailures, this.backoff)
    // an attempt in flight schedules the next one itself when it ends
    if (this.inFlight != null) return
    if (this.state.nextAttemptAt == null || this.state.nextAttemptAt > Date.now() + delay) this.schedule(delay)
  }
}

function shuffle<T> (items: T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const a = out[i] as T
    out[i] = out[j] as T
    out[j] = a
  }
  return out
}
