/**
 * The libp2p node as octet assembles it (createNode) and as the rest of the daemon sees it
 * (OctetNode). Over 400 lines because the two are one contract, the options chosen here and
 * the components read back from them, while every other concern of node/ has its own file.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { autoNATv2 } from '@libp2p/autonat-v2'
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayTransport, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { identify, identifyPush } from '@libp2p/identify'
import { kadDHT, type KadDHT, type Selectors, type Validators } from '@libp2p/kad-dht'
import { uPnPNAT } from '@libp2p/upnp-nat'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Identify } from '@libp2p/identify'
import type { Ping } from '@libp2p/ping'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import type { Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import type { ReachabilityMode, RelayLimits } from '../config.js'
import { OctetError, errorMessage, systemErrorCode } from '../errors.js'
import { createLogger, type Logger } from '../logger.js'
import { LocalSubnets, addressesWorthSharing, dhtPeerInfoMapper, dialAddressSorter, isLoopbackOnly } from './addresses.js'
import { CONNECTION_PING_INTERVAL, DHT_LOOKUP_TIMEOUT, DHT_PROTOCOL, DIAL_TIMEOUT, INBOUND_CONNECTIONS_PER_SECOND_PER_HOST, LOCAL_INBOUND_CONNECTIONS_PER_SECOND, LOCAL_MAX_PENDING_INBOUND_CONNECTIONS, MAX_CONNECTIONS, MAX_PENDING_INBOUND_CONNECTIONS, MAX_STREAM_WINDOW, PING_MAX_INBOUND_STREAMS, PING_MAX_OUTBOUND_STREAMS, RELAY_RESERVATION_TIMEOUT } from './constants.js'
import { Pubsub, pubsubService } from './pubsub.js'
import { dhtOf, pauseEmptyQueries, type Dht } from './dht.js'
import { pinoComponentLogger } from './libp2p-logger.js'
import { ReachabilityTracker, type ReachabilityStatus } from './reachability.js'
import { RelayClient, RelayServerGate, relayServerService, type RelayServerStats } from './relay.js'
import { Reconnector, type ReconnectStatus } from './reconnect.js'
import { StunServer } from './stun.js'
import { DirectUpgrader, isCircuitHolder, isWebRTC, stunServerFor, webRTCTransport, type CountHook } from './webrtc.js'
// fixes to the libp2p stack for every connection this process makes (see the module)
import { warnInactiveStackFixes } from './stack-fixes.js'

export { Pubsub } from './pubsub.js'
export type { PubsubMessage, TopicHandler, Verdict } from './pubsub.js'
export type { Reachability, ReachabilityStatus } from './reachability.js'
export type { RelayServerStats } from './relay.js'
export { RELAYED_CONNECTIONS_OK } from './constants.js'
export type { Dht } from './dht.js'
export { dialProtocolFindingPeer } from './dial.js'
export type { AttemptOutcome, Connectivity, ReconnectStatus as NodeStatus } from './reconnect.js'

export interface OctetServices {
  identify: Identify
  ping: Ping
  dht: KadDHT
  /** gossipsub, reached only through `Pubsub` (src/node/pubsub.ts) */
  pubsub: unknown
  [key: string]: unknown
}

/** The libp2p node as octet assembles it. Only `node/` and protocol handlers touch it. */
export type OctetLibp2p = Libp2p<OctetServices>

export interface NodeInit {
  privateKey: PrivateKey
  listen: Multiaddr[]
  bootstrap: Multiaddr[]
  mdns: boolean
  datastore: Datastore
  /**
   * Validators of DHT record namespaces (the first segment of a key: `/<ns>/…`),
   * run on every record put to us or fetched. kad-dht 16 refuses records of a
   * namespace that has none.
   */
  dhtValidators?: Validators
  /** Pick the best of several records found for one key, by namespace. */
  dhtSelectors?: Selectors
  /**
   * Connection encryption; Noise unless replaced. Tests swap in plaintext to
   * show that the Signal layer alone keeps message text off the wire.
   */
  connectionEncrypters?: Libp2pOptions['connectionEncrypters']
  /** default `auto` */
  reachability?: ReachabilityMode
  /** offer circuit relay (while public) within these limits; undefined: never */
  relayService?: RelayLimits
  /** UPnP / NAT-PMP port mapping on the home router; default off */
  upnp?: boolean
  /**
   * WebRTC: listen on `/webrtc` (announced as `…/p2p-circuit/webrtc` once we hold relay
   * reservations) and upgrade relayed connections to direct ones; default off
   */
  webrtc?: boolean
  /** UDP port of the STUN responder run while this node is public; 0 or undefined: none */
  stunPort?: number
  /** called with the name of each hole-punching counter as it goes up (`holepunch.*`) */
  count?: CountHook
  /**
   * default: silent; where the reconnect loop says that the node lost or regained the network,
   * and libp2p's own log lines go (src/node/libp2p-logger.ts)
   */
  log?: Logger
  /** libp2p components whose debug lines are logged (`--libp2p-log`); by default only libp2p's errors, at debug */
  libp2pLog?: string[]
  /** libp2p's own metrics (connections, streams, DHT, …), the `metrics` option of createLibp2p */
  metrics?: Libp2pOptions['metrics']
}

/** Where this node stands and what it does about it, for `GET /v1/identity` and `octet status`. */
export interface NetworkStanding extends ReachabilityStatus {
  /** our `/p2p-circuit` addresses: relays that hold a reservation for us */
  relayAddresses: string[]
  /** what we give others as a relay */
  relayService: RelayServerStats | { offered: false, disabled: true }
}

export interface PeerSummary {
  peerId: string
  addresses: string[]
}

export interface ConnectedPeer extends PeerSummary {
  direction: 'inbound' | 'outbound'
  openedAt: number
}

/** Builds and starts the libp2p node. Listen failures become one clear OctetError. */
export async function createNode (init: NodeInit): Promise<OctetNode> {
  const log = init.log ?? createLogger('silent')
  const peerDiscovery: NonNullable<Libp2pOptions['peerDiscovery']> = []
  if (init.bootstrap.length > 0) peerDiscovery.push(bootstrap({ list: init.bootstrap.map(a => a.toString()) }))
  if (init.mdns) peerDiscovery.push(mdns())
  const subnets = new LocalSubnets()
  // a node of a local testnet (nothing but loopback) hands out and dials loopback addresses
  const loopbackOnly = isLoopbackOnly(init.listen)
  const optional: Record<string, unknown> = {}
  if (init.relayService != null) optional.relay = relayServerService(init.relayService)
  if (init.upnp === true) optional.upnp = uPnPNAT()
  const transports: NonNullable<Libp2pOptions['transports']> = [tcp(), webSockets(), circuitRelayTransport({ reservationCompletionTimeout: RELAY_RESERVATION_TIMEOUT })]
  const listen = init.listen.map(a => a.toString())
  // set once libp2p exists: the ICE configuration (asked for at each WebRTC connection) and the
  // DHT's address mapper (which looks at our connections) need it
  let started: Libp2p | undefined
  if (init.webrtc === true) {
    // the STUN server: a relay we hold a reservation on (connected, so up), else a bootstrap peer
    transports.push(await webRTCTransport(() => stunServerFor([...(started?.getMultiaddrs().filter(isCircuitHolder) ?? []), ...init.bootstrap])))
    // always, not only once private: the listener announces nothing until there are
    // `/p2p-circuit` addresses to put `/webrtc` behind, and then at once
    listen.push('/webrtc')
  }

  const libp2p = await createLibp2p({
    privateKey: init.privateKey,
    logger: pinoComponentLogger(log, init.libp2pLog),
    datastore: init.datastore,
    metrics: init.metrics,
    start: false,
    addresses: {
      listen,
      announceFilter: addrs => addressesWorthSharing(addrs, loopbackOnly)
    },
    transports,
    // a peer's `…/p2p-circuit/webrtc` addresses are for the upgrade only (DirectUpgrader dials
    // them itself, past this gate): dialled like any other address — a first contact whose plain
    // relayed dial failed, or DCUtR — a WebRTC attempt that cannot connect holds the dial for
    // seconds and leaves a dead connection behind
    connectionGater: { denyDialMultiaddr: addr => isWebRTC(addr) },
    connectionEncrypters: init.connectionEncrypters ?? [noise()],
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: MAX_STREAM_WINDOW } })],
    peerDiscovery,
    connectionMonitor: { pingInterval: CONNECTION_PING_INTERVAL },
    connectionManager: {
      maxConnections: MAX_CONNECTIONS,
      // the same limits for every address; a local testnet's burst is met by their size
      inboundConnectionThreshold: loopbackOnly ? LOCAL_INBOUND_CONNECTIONS_PER_SECOND : INBOUND_CONNECTIONS_PER_SECOND_PER_HOST,
      maxIncomingPendingConnections: loopbackOnly ? LOCAL_MAX_PENDING_INBOUND_CONNECTIONS : MAX_PENDING_INBOUND_CONNECTIONS,
      dialTimeout: DIAL_TIMEOUT,
      addressSorter: dialAddressSorter(subnets, () => loopbackOnly)
    },
    services: {
      identify: identify(),
      // tells connected peers when our addresses change (a relay reservation made or lost), so
      // that what they hand out through the DHT is a way in that works now
      identifyPush: identifyPush(),
      // two pingers share /ipfs/ping/1.0.0 on every connection: kad-dht's liveness checks and the
      // connection monitor, which aborts the connection when its ping cannot open a stream. With
      // ping's default of one outbound stream they collide, and connections die for nothing
      // (every protocol on them with it; gossipsub loses its peer state). One stream each
      ping: ping({ maxOutboundStreams: PING_MAX_OUTBOUND_STREAMS, maxInboundStreams: PING_MAX_INBOUND_STREAMS }),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        // nodes of a testnet or a LAN are reached on private addresses, which stay in; a peer
        // with a public or relayed address keeps its LAN addresses to its LAN (src/node/addresses.ts)
        peerInfoMapper: dhtPeerInfoMapper(() => loopbackOnly, peer => started?.getConnections(peer).map(c => c.remoteAddr) ?? []),
        clientMode: false,
        // kad-dht holds every query until its first self-query has found K = 20 peers or timed
        // out (5 s): in a network smaller than 20 that stalls each node's first lookup for 5 s.
        // Callers here retry on their own (outbox backoff, testnet readiness, prekey republish)
        allowQueryWithZeroPeers: true,
        validators: init.dhtValidators,
        selectors: init.dhtSelectors
      }),
      pubsub: pubsubService(),
      // asks peers to dial our public addresses back: what makes a node `public`. AutoNAT v2,
      // not v1: @libp2p/autonat 3.0's server dials the address to verify without `force`, so
      // when it is already connected to the asker on that address (the asker dialled it) it
      // gets that connection back, reports success and closes it. Measured with six public
      // nodes on public addresses (test/integration/autonat.test.ts): under v1 their
      // connections were closed again and again and none was confirmed in 100 s; under v2,
      // which dials back on a new connection with a nonce, all were within seconds
      autonat: autoNATv2(),
      // once a relayed connection exists, tries to replace it with a direct one (hole punching)
      dcutr: dcutr(),
      ...optional
    }
  })
  started = libp2p
  pauseEmptyQueries(libp2p.peerRouting)
  try {
    await libp2p.start()
  } catch (err) {
    await Promise.resolve(libp2p.stop()).catch(() => {})
    throw translateStartError(err, init.listen)
  }
  const node: OctetNode = new OctetNode(libp2p, { ...init, log }, subnets, new Reconnector(libp2p, { bootstrap: init.bootstrap, log: init.log }))
  await node.startReachability()
  node.startReconnecting()
  return node
}

function translateStartError (err: unknown, listen: Multiaddr[]): Error {
  const text = errorMessage(err)
  if (systemErrorCode(err) === 'EADDRINUSE' || text.includes('EADDRINUSE')) {
    return new OctetError('ADDRESS_IN_USE', `a listen address is already in use (${listen.map(a => a.toString()).join(', ')}); stop the other process or choose other ports with --listen`, { cause: err })
  }
  if (systemErrorCode(err) === 'EADDRNOTAVAIL' || text.includes('EADDRNOTAVAIL')) {
    return new OctetError('INVALID_ADDRESS', `a listen address is not available on this machine (${listen.map(a => a.toString()).join(', ')}); use an address of one of its interfaces`, { cause: err })
  }
  return new OctetError('INTERNAL', `the libp2p node failed to start: ${text}`, { cause: err })
}

/** The parts of libp2p's components that its public interface leaves out and the node reads. */
interface InternalComponents {
  /** AutoNAT's verdicts */
  addressManager: { getAddressesWithMetadata: () => Array<{ multiaddr: Multiaddr, verified: boolean }> }
  /** the addresses listeners are bound to */
  transportManager: { getAddrs: () => Multiaddr[] }
}

/**
 * The node as the rest of the daemon sees it: a PeerId, addresses, peers and
 * DHT lookups, with no libp2p types in the signatures.
 */
export class OctetNode {
  /** group topics over gossipsub */
  readonly pubsub: Pubsub
  /** what octet needs from kad-dht: the routing table, walks, records (src/node/dht.ts) */
  readonly dht: Dht
  private readonly reachability: ReachabilityTracker
  private readonly relayClient: RelayClient
  private readonly relayGate: RelayServerGate | undefined
  private readonly stun: StunServer | undefined
  /** relayed → WebRTC upgrades and the guard on WebRTC connections; undefined when WebRTC is off */
  readonly direct: DirectUpgrader | undefined
  private readonly log: Logger
  private readonly transportManager: InternalComponents['transportManager']
  /** reachability changes apply one after another */
  private applying: Promise<void> = Promise.resolve()

  /** @param reconnector keeps the node connected (src/node/reconnect.ts) */
  constructor (readonly libp2p: OctetLibp2p, init: NodeInit, subnets: LocalSubnets, private readonly reconnector: Reconnector) {
    this.pubsub = new Pubsub(libp2p)
    this.dht = dhtOf(libp2p)
    this.log = init.log ?? createLogger('silent')
    // a fix to the stack that found its upstream target changed runs unpatched: said at every start
    warnInactiveStackFixes(this.log)
    // AutoNAT's verdicts live in libp2p's address manager, which its public interface leaves out
    const { addressManager, transportManager } = (libp2p as unknown as { components: InternalComponents }).components
    this.transportManager = transportManager
    this.reachability = new ReachabilityTracker(init.reachability ?? 'auto', { addresses: () => addressManager.getAddressesWithMetadata() }, subnets)
    this.relayClient = new RelayClient(libp2p, this.log)
    const relay = libp2p.services.relay as CircuitRelayService | undefined
    this.relayGate = relay == null || init.relayService == null ? undefined : new RelayServerGate(libp2p, relay, init.relayService, this.log)
    this.stun = init.stunPort != null && init.stunPort > 0 ? new StunServer(init.stunPort, this.log) : undefined
    this.direct = init.webrtc === true ? new DirectUpgrader(libp2p, this.log, init.count) : undefined
    this.direct?.start()
  }

  /** Applies what is known now and follows every change of reachability. */
  async startReachability (): Promise<void> {
    this.libp2p.addEventListener('peer:identify', event => {
      const { observedAddr, connection } = event.detail
      if (observedAddr != null) this.reachability.onObservedAddress(observedAddr, connection.remoteAddr)
    })
    this.libp2p.addEventListener('self:peer:update', () => { this.reachability.check() })
    this.reachability.onChange(status => {
      this.log.info({ reachability: status.reachability, source: status.source, confirmed: status.confirmedAddresses, observed: status.observedAddresses }, 'reachability changed')
      this.applying = this.applying.then(async () => { await this.applyReachability() })
    })
    await this.applyReachability()
  }

  private async applyReachability (): Promise<void> {
    const reachability = this.reachability.reachability
    try {
      await this.relayGate?.apply(reachability)
      await this.relayClient.apply(reachability)
    } catch (err) {
      this.log.warn({ err, reachability }, 'could not apply the relay settings for this reachability')
    }
    // peers behind NATs ask public octet nodes for their mapped address (WebRTC's ICE)
    try {
      if (reachability === 'public') await this.stun?.start()
      else await this.stun?.stop()
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'no STUN responder: peers behind NATs must find another for direct connections')
    }
  }

  standing (): NetworkStanding {
    return {
      ...this.reachability.status(),
      relayAddresses: this.relayClient.relayAddresses(),
      relayService: this.relayGate?.stats() ?? { offered: false, disabled: true }
    }
  }

  startReconnecting (): void {
    this.reconnector.start()
  }

  /** Peer count, bootstrap peers, the routing table's size, and what the reconnect loop did last and does next. */
  status (): ReconnectStatus {
    return this.reconnector.status()
  }

  get peerId (): string {
    return this.libp2p.peerId.toString()
  }

  /**
   * Where this node listens, as bound (port 0 resolved), with our /p2p/ PeerId: what an
   * operator gives others to bootstrap from. libp2p 3 announces a public address only once
   * AutoNAT has confirmed it, so until then a public node's announced list is empty while
   * these are already dialable.
   */
  listenAddresses (): string[] {
    return this.transportManager.getAddrs().map(a => a.encapsulate(`/p2p/${this.peerId}`).toString())
  }

  /** Addresses other peers are told to dial: confirmed or private listen addresses, relay addresses; see addressesWorthSharing. */
  announceAddresses (): string[] {
    return this.libp2p.getMultiaddrs().map(a => a.toString())
  }

  connectedPeers (): ConnectedPeer[] {
    const byPeer = new Map<string, ConnectedPeer>()
    for (const conn of this.libp2p.getConnections()) {
      const peerId = conn.remotePeer.toString()
      const entry = byPeer.get(peerId) ?? { peerId, addresses: [], direction: conn.direction, openedAt: conn.timeline.open }
      entry.addresses.push(conn.remoteAddr.toString())
      byPeer.set(peerId, entry)
    }
    return [...byPeer.values()].sort((a, b) => a.peerId.localeCompare(b.peerId))
  }

  /** Closes every connection to a peer; returns false when there was none. */
  async hangUp (peerId: string, signal?: AbortSignal): Promise<boolean> {
    const id = parsePeerId(peerId)
    const connected = this.libp2p.getConnections(id).length > 0
    await this.libp2p.hangUp(id, { signal: signal ?? AbortSignal.timeout(DIAL_TIMEOUT) })
    return connected
  }

  /**
   * Asks the DHT, not the local peer store, where a peer is: a FIND_NODE walk
   * towards its key. Throws PEER_NOT_FOUND when no node on the way knows it.
   */
  async findPeerInDht (peerId: string, signal?: AbortSignal): Promise<PeerSummary> {
    const id = parsePeerId(peerId)
    const timeout = AbortSignal.timeout(DHT_LOOKUP_TIMEOUT)
    try {
      const found = await this.libp2p.peerRouting.findPeer(id, {
        useCache: false,
        signal: signal == null ? timeout : AbortSignal.any([signal, timeout])
      })
      return { peerId: found.id.toString(), addresses: found.multiaddrs.map(a => a.toString()) }
    } catch (err) {
      if (timeout.aborted) throw new OctetError('TIMEOUT', `DHT lookup of ${peerId} timed out after ${DHT_LOOKUP_TIMEOUT} ms`, { cause: err })
      if (signal?.aborted === true) throw err
      throw new OctetError('PEER_NOT_FOUND', `no peer in the DHT knows ${peerId}`, { cause: err })
    }
  }

  async stop (): Promise<void> {
    await this.reconnector.stop()
    this.pubsub.stop()
    this.direct?.stop()
    await this.applying
    await this.stun?.stop()
    await this.libp2p.stop()
  }
}

export function parsePeerId (text: string): PeerId {
  try {
    return peerIdFromString(text)
  } catch (err) {
    throw new OctetError('INVALID_PEER_ID', `"${text}" is not a PeerId (expected e.g. 12D3KooW…)`, { cause: err })
  }
}
