/**
 * Direct connections between peers behind NATs: a relayed connection is
 * upgraded to WebRTC (docs/hole-punching.md: on this stack only WebRTC
 * punches through; TCP, WebSockets and QUIC never do).
 *
 * - The transport takes its ICE configuration from a function, asked at every
 *   connection: one STUN server, a public octet node (a relay we hold a
 *   reservation on, else a bootstrap peer), which answers on UDP
 *   DEFAULT_STUN_PORT (src/node/stun.ts). Never a third-party server.
 * - Of the two sides of a relayed connection, the one whose PeerId sorts first
 *   dials the peer's `…/p2p-circuit/webrtc/p2p/<peer>` address once identify
 *   says the peer speaks the WebRTC signalling protocol (`DirectUpgrader`).
 *   The WebRTC transport signals over any connection it already has to the
 *   peer, inbound ones included, so either side can. This is the only
 *   way octet makes WebRTC connections: the connection gater keeps such
 *   addresses out of every other dial, DCUtR's included (DCUtR would only try
 *   where the relay's address is public, and its TCP attempts never punch).
 * - @libp2p/webrtc 6.0.33 emits connections whose ICE never connected (when
 *   the signalling is aborted or ends early); libp2p then prefers them to
 *   the relayed one and every stream to that peer stalls. Every new WebRTC
 *   connection is checked and aborted unless it is really up (the guard).
 */
import type { Connection, IdentifyResult, Libp2p, PeerId } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { OctetError, errorMessage } from '../errors.js'
import type { Logger } from '../logger.js'
import { ipOf, isCircuit, isLoopback } from './addresses.js'
import {
  DEFAULT_STUN_PORT, WEBRTC_FAILURES_TRACKED, WEBRTC_GUARD_TIMEOUT, WEBRTC_RELAYED_CLOSE_DELAY,
  WEBRTC_RETRY_AFTER, WEBRTC_SIGNALING_PROTOCOL, WEBRTC_UPGRADE_TIMEOUT
} from './constants.js'

export interface IceServer { urls: string[] }

/** True for a WebRTC (private-to-private) connection's address, on either side. */
export function isWebRTC (addr: Multiaddr): boolean {
  return addr.getComponents().some(c => c.name === 'webrtc')
}

/** A connection through a relay (and not a WebRTC connection signalled over one). */
export function isRelayed (conn: Connection): boolean {
  return conn.limits != null || (isCircuit(conn.remoteAddr) && !isWebRTC(conn.remoteAddr))
}

/** Our own `/p2p-circuit` address, whose first part is a relay holding a reservation for us. */
export function isCircuitHolder (addr: Multiaddr): boolean {
  return isCircuit(addr) && !isWebRTC(addr)
}

/**
 * The STUN server for ICE: the first usable IP among `candidates` (relays we
 * hold a reservation on come first: we are connected to them, so they are up).
 * One only: libdatachannel (node-datachannel) with libjuice uses a single STUN
 * server and picks at random among several, so a dead one in the list would
 * fail some connections for nothing.
 */
export function stunServerFor (candidates: Multiaddr[], port = DEFAULT_STUN_PORT): IceServer[] {
  for (const addr of candidates) {
    const ip = ipOf(addr)
    if (ip == null || isLoopback(addr)) continue
    return [{ urls: [ip.includes(':') ? `stun:[${ip}]:${port}` : `stun:${ip}:${port}`] }]
  }
  // an empty list, never undefined: @libp2p/webrtc then falls back to public third-party servers
  return []
}

/**
 * The WebRTC transport, asking `iceServers` for its STUN server at each connection. Loaded
 * only when asked for: importing @libp2p/webrtc (its native data channel with it) takes about
 * 0.45 s, a third of a daemon's start, for an option that is off by default.
 */
export async function webRTCTransport (iceServers: () => IceServer[]): Promise<ReturnType<typeof import('@libp2p/webrtc').webRTC>> {
  const { webRTC } = await import('@libp2p/webrtc')
  return webRTC({ rtcConfiguration: () => ({ iceServers: iceServers() }) })
}

/**
 * Whether we, rather than `peer`, upgrade the relayed connections between us: the side whose
 * PeerId sorts first. Both sides decide alike without a word exchanged, so a pair makes one
 * upgrade attempt however many relayed connections it has and whoever dialled them (when
 * each side upgraded the connection it had dialled, a pair that had dialled each other at
 * about the same time made two attempts, and with STUN two WebRTC connections).
 */
export function upgradesTo (self: PeerId, peer: PeerId): boolean {
  return self.toString() < peer.toString()
}

/** The `…/p2p-circuit/webrtc/p2p/<peer>` address that upgrades a relayed connection. */
export function webRTCAddressOver (relayed: Multiaddr, peer: PeerId): Multiaddr {
  const components = relayed.getComponents()
  const circuit = components.findIndex(c => c.name === 'p2p-circuit')
  if (circuit < 0) throw new OctetError('INVALID_MULTIADDR', `${relayed.toString()} is not a relayed address`)
  return multiaddr(components.slice(0, circuit + 1)).encapsulate(`/webrtc/p2p/${peer.toString()}`)
}

export interface HolePunchStats {
  /** explicit upgrades started */
  attempts: number
  /** … that ended with a working WebRTC connection */
  successes: number
  failures: number
  /** WebRTC connections (ours or the peer's, DCUtR's too) aborted because they were not up */
  guardAborts: number
  /** duration of the last successful upgrade, ms */
  lastUpgradeMs?: number
}

/** Receives each counter increment (the daemon's /v1/stats counters). */
export type CountHook = (name: string) => void

/** The part of libp2p's transport manager the upgrade uses; internal to libp2p. */
interface TransportDialer { dial: (addr: Multiaddr, options: { signal: AbortSignal }) => Promise<Connection> }

/** What the guard reads from @libp2p/webrtc's connection; private in libp2p's typings. */
interface WebRTCInternals { maConn?: { peerConnection?: { connectionState?: string } } }

/**
 * Upgrades relayed connections to WebRTC and guards every WebRTC connection.
 * `start` after libp2p started; `stop` before it stops.
 */
export class DirectUpgrader {
  readonly stats: HolePunchStats = { attempts: 0, successes: 0, failures: 0, guardAborts: 0 }
  private readonly inFlight = new Set<string>()
  private readonly failedAt = new Map<string, number>()
  private readonly checks = new WeakMap<Connection, Promise<boolean>>()
  private readonly identified = new WeakSet<Connection>()
  private readonly waiting = new Map<Connection, () => void>()
  private readonly stopping = new AbortController()

  constructor (
    private readonly libp2p: Libp2p,
    private readonly log: Logger,
    private readonly count: CountHook = () => {}
  ) {
    this.onIdentify = this.onIdentify.bind(this)
    this.onOpen = this.onOpen.bind(this)
  }

  start (): void {
    this.libp2p.addEventListener('peer:identify', this.onIdentify)
    this.libp2p.addEventListener('connection:open', this.onOpen)
  }

  stop (): void {
    this.libp2p.removeEventListener('peer:identify', this.onIdentify)
    this.libp2p.removeEventListener('connection:open', this.onOpen)
    this.stopping.abort()
  }

  private onOpen (event: CustomEvent<Connection>): void {
    if (isWebRTC(event.detail.remoteAddr)) void this.check(event.detail)
  }

  private onIdentify (event: CustomEvent<IdentifyResult>): void {
    const { connection, peerId, protocols } = event.detail
    this.identified.add(connection)
    this.waiting.get(connection)?.()
    if (!isRelayed(connection) || !upgradesTo(this.libp2p.peerId, peerId)) return
    if (!protocols.includes(WEBRTC_SIGNALING_PROTOCOL)) return
    void this.upgrade(peerId, connection)
  }

  /**
   * Whether a new WebRTC connection is really up; aborts it when not. Up: its
   * RTCPeerConnection is `connected` (the known failure: a connection emitted
   * while ICE is still checking, which never connects), and identify, which
   * libp2p runs on every new connection, completes over it within
   * WEBRTC_GUARD_TIMEOUT (any other way it may be dead). Identify rather than
   * a ping stream: ping's two outbound streams per connection belong to
   * kad-dht and the connection monitor, and a third would be refused.
   */
  async check (conn: Connection): Promise<boolean> {
    let pending = this.checks.get(conn)
    if (pending == null) {
      pending = this.probe(conn)
      this.checks.set(conn, pending)
    }
    return await pending
  }

  private async probe (conn: Connection): Promise<boolean> {
    const state = (conn as unknown as WebRTCInternals).maConn?.peerConnection?.connectionState
    let reason: string | undefined
    if (state != null && state !== 'connected') {
      reason = `its ICE state is "${state}"`
    } else if (!this.identified.has(conn)) {
      const identified = await new Promise<boolean>(resolve => {
        const done = (ok: boolean): void => { clearTimeout(timer); this.waiting.delete(conn); resolve(ok) }
        const timer = setTimeout(() => { done(false) }, WEBRTC_GUARD_TIMEOUT)
        this.waiting.set(conn, () => { done(true) })
        // a connection that closes meanwhile needs no abort
        conn.addEventListener('close', () => { done(true) }, { once: true })
      })
      if (!identified) reason = `identify did not complete over it within ${WEBRTC_GUARD_TIMEOUT} ms`
    }
    if (reason == null) return conn.status === 'open'
    this.stats.guardAborts++
    this.count('holepunch.guard_aborts')
    this.log.info({ peer: conn.remotePeer.toString(), addr: conn.remoteAddr.toString(), reason }, 'aborting a WebRTC connection that is not up')
    conn.abort(new OctetError('PEER_UNREACHABLE', `WebRTC connection to ${conn.remotePeer.toString()} is not up: ${reason}`))
    return false
  }

  private async upgrade (peer: PeerId, relayed: Connection): Promise<void> {
    const key = peer.toString()
    const failed = this.failedAt.get(key)
    if (this.inFlight.has(key) || (failed != null && Date.now() - failed < WEBRTC_RETRY_AFTER)) return
    if (this.libp2p.getConnections(peer).some(c => isWebRTC(c.remoteAddr) && c.status === 'open')) return
    this.inFlight.add(key)
    this.stats.attempts++
    this.count('holepunch.attempts')
    const started = Date.now()
    try {
      // the transport signals over a connection it has to the peer (this one or another,
      // inbound or not); the address matters only when none is left by then
      const target = webRTCAddressOver(relayed.remoteAddr, peer)
      // straight to the transport: libp2p's dial queue would join the dial to this peer that may
      // still be under way (the one that made the relayed connection), even with `force`, and
      // hand back the relayed connection. The connection manager tracks the new connection from
      // its connection:open event like any other
      const transports = (this.libp2p as unknown as { components: { transportManager: TransportDialer } }).components.transportManager
      const conn = await transports.dial(target, { signal: AbortSignal.any([AbortSignal.timeout(WEBRTC_UPGRADE_TIMEOUT), this.stopping.signal]) })
      if (!isWebRTC(conn.remoteAddr)) throw new OctetError('PEER_UNREACHABLE', `dialling ${target.toString()} returned an existing connection on ${conn.remoteAddr.toString()}`)
      if (!await this.check(conn)) throw new OctetError('PEER_UNREACHABLE', 'the WebRTC connection was not up')
      const ms = Date.now() - started
      this.stats.successes++
      this.stats.lastUpgradeMs = ms
      this.count('holepunch.successes')
      this.failedAt.delete(key)
      this.log.info({ peer: key, ms }, 'relayed connection upgraded to a direct WebRTC connection')
      const timer = setTimeout(() => { void this.closeRelayed(peer) }, WEBRTC_RELAYED_CLOSE_DELAY)
      timer.unref()
      this.stopping.signal.addEventListener('abort', () => { clearTimeout(timer) }, { once: true })
    } catch (err) {
      if (this.stopping.signal.aborted) return
      this.stats.failures++
      this.count('holepunch.failures')
      this.failedAt.set(key, Date.now())
      if (this.failedAt.size > WEBRTC_FAILURES_TRACKED) {
        const oldest = this.failedAt.keys().next().value
        if (oldest != null) this.failedAt.delete(oldest)
      }
      this.log.info({ peer: key, ms: Date.now() - started, err: errorMessage(err) }, 'no direct connection: staying on the relay')
    } finally {
      this.inFlight.delete(key)
    }
  }

  /**
   * The relayed connections to a peer we now reach directly hold a circuit (and its data
   * budget) on a relay for nothing, and long-lived streams on them (gossipsub's) would keep
   * using the relay; libp2p already prefers the direct connection for new streams. Closed
   * WEBRTC_RELAYED_CLOSE_DELAY after the upgrade, gracefully: streams under way finish first.
   */
  private async closeRelayed (peer: PeerId): Promise<void> {
    // only while the direct connection is still there: otherwise the relay is all we have
    if (this.stopping.signal.aborted || !this.libp2p.getConnections(peer).some(c => isWebRTC(c.remoteAddr) && c.status === 'open')) return
    await Promise.all(this.libp2p.getConnections(peer).filter(isRelayed).map(async c => {
      try {
        await c.close({ signal: AbortSignal.timeout(WEBRTC_GUARD_TIMEOUT) })
      } catch (err) {
        c.abort(err instanceof Error ? err : new Error(errorMessage(err)))
      }
    }))
  }
}
