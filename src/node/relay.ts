/**
 * Circuit relay v2, both roles.
 *
 * Server: any node found publicly reachable lends a way in to peers that are
 * not, within limits its operator sets (`RelayLimits`). The hop protocol is
 * offered only while the node is public: a relay behind a NAT hands out
 * addresses nobody can dial. libp2p's server knows total reservations and
 * per-circuit duration and bytes; the number of circuits at once, in total and
 * per peer, is counted here.
 *
 * Client: a node behind a NAT listens on `/p2p-circuit` once per relay it
 * wants; libp2p's reservation store then finds relays (peers whose identify
 * lists the hop protocol: bootstrap peers, peers from the DHT's random walk),
 * reserves, renews before expiry, and replaces a relay whose connection closed.
 */
import { circuitRelayServer, RELAY_V2_HOP_CODEC, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { RelayLimits } from '../config.js'
import type { Logger } from '../logger.js'
import { isCircuit } from './addresses.js'
import { RELAY_HOP_MAX_INBOUND_STREAMS, RELAY_HOP_MAX_OUTBOUND_STREAMS, RELAY_RESERVATIONS_WANTED } from './constants.js'
import type { Reachability } from './reachability.js'

/** The libp2p relay server's options for our limits. */
export function relayServerService (limits: RelayLimits): ReturnType<typeof circuitRelayServer> {
  return circuitRelayServer({
    maxInboundHopStreams: RELAY_HOP_MAX_INBOUND_STREAMS,
    maxOutboundHopStreams: RELAY_HOP_MAX_OUTBOUND_STREAMS,
    reservations: {
      maxReservations: limits.maxReservations,
      applyDefaultLimit: true,
      defaultDurationLimit: limits.circuitDurationMs,
      defaultDataLimit: BigInt(limits.circuitBytes)
    }
  })
}

/**
 * HopMessage { type: STATUS, status: RESOURCE_LIMIT_EXCEEDED } as circuit relay v2
 * encodes it (field 1 = 2, field 5 = 201); the package does not export its codec.
 */
const RESOURCE_LIMIT_EXCEEDED = Uint8Array.from([0x08, 0x02, 0x28, 0xc9, 0x01])
const rawMessage = { encode: (bytes: Uint8Array) => bytes, decode: (bytes: Uint8Array) => bytes }

/** What the server's CONNECT handler receives (its typings keep the pb types to the package). */
interface HopConnectArgs {
  stream: {
    write: (data: Uint8Array, proto: typeof rawMessage, options?: { signal?: AbortSignal }) => Promise<void>
  }
  request: { peer?: { id: Uint8Array } }
  connection: Connection
}
interface StopArgs {
  connection: Connection
  request: { peer?: { id: Uint8Array } }
}
/** The two methods of libp2p's CircuitRelayServer wrapped to count circuits; both are public. */
interface ServerMethods {
  handleConnect: (args: HopConnectArgs, options: { signal?: AbortSignal }) => Promise<void>
  stopHop: (args: StopArgs, options: { signal?: AbortSignal }) => Promise<Stream | undefined>
  onHop: (stream: Stream, connection: Connection) => Promise<void>
}

interface Circuit { src: string, dst: string, established: boolean }

export interface RelayServerStats {
  offered: boolean
  reservations: number
  circuits: number
  refusedCircuits: number
}

const peerKey = (id: Uint8Array | undefined): string | undefined => id == null ? undefined : Buffer.from(id).toString('base64')
const idKey = (peer: PeerId): string => Buffer.from(peer.toMultihash().bytes).toString('base64')

/**
 * Offers the hop protocol while the node is public and keeps circuits within
 * `limits`. A circuit counts from its CONNECT until the stream to its
 * destination closes (the relay ends both sides together).
 */
export class RelayServerGate {
  private readonly circuits = new Set<Circuit>()
  private refused = 0
  private offered = true

  constructor (
    private readonly libp2p: Libp2p,
    private readonly server: CircuitRelayService,
    private readonly limits: RelayLimits,
    private readonly log: Logger
  ) {
    const methods = server as unknown as ServerMethods
    const handleConnect = methods.handleConnect.bind(server)
    const stopHop = methods.stopHop.bind(server)
    methods.handleConnect = async (args, options) => { await this.onConnect(handleConnect, args, options) }
    methods.stopHop = async (args, options) => await this.onStop(stopHop, args, options)
  }

  /** Call after libp2p started (the server registered its handler) and on every change. */
  async apply (reachability: Reachability): Promise<void> {
    const offer = reachability === 'public'
    if (offer === this.offered) return
    this.offered = offer
    if (offer) {
      const onHop = (this.server as unknown as ServerMethods).onHop
      await this.libp2p.handle(RELAY_V2_HOP_CODEC, onHop, {
        maxInboundStreams: RELAY_HOP_MAX_INBOUND_STREAMS,
        maxOutboundStreams: RELAY_HOP_MAX_OUTBOUND_STREAMS,
        runOnLimitedConnection: true
      })
      this.log.info({ limits: this.limits }, 'this node is public: relaying for peers behind NATs')
    } else {
      await this.libp2p.unhandle(RELAY_V2_HOP_CODEC)
    }
  }

  stats (): RelayServerStats {
    return {
      offered: this.offered,
      reservations: this.server.reservations.size,
      circuits: [...this.circuits].filter(c => c.established).length,
      refusedCircuits: this.refused
    }
  }

  private countFor (key: string): number {
    let n = 0
    for (const c of this.circuits) if (c.src === key || c.dst === key) n++
    return n
  }

  private async onConnect (original: ServerMethods['handleConnect'], args: HopConnectArgs, options: { signal?: AbortSignal }): Promise<void> {
    const src = idKey(args.connection.remotePeer)
    const dst = peerKey(args.request.peer?.id)
    // a malformed request is the server's to refuse
    if (dst == null) { await original(args, options); return }
    if (this.circuits.size >= this.limits.maxCircuits || this.countFor(src) >= this.limits.maxCircuitsPerPeer || this.countFor(dst) >= this.limits.maxCircuitsPerPeer) {
      this.refused++
      this.log.debug({ peer: args.connection.remotePeer.toString(), circuits: this.circuits.size }, 'relay: circuit refused, limit reached')
      await args.stream.write(RESOURCE_LIMIT_EXCEEDED, rawMessage, options)
      return
    }
    // counted from now, so that concurrent requests cannot all pass the check
    const circuit: Circuit = { src, dst, established: false }
    this.circuits.add(circuit)
    try {
      await original(args, options)
    } finally {
      if (!circuit.established) this.circuits.delete(circuit)
    }
  }

  private async onStop (original: ServerMethods['stopHop'], args: StopArgs, options: { signal?: AbortSignal }): Promise<Stream | undefined> {
    const stream = await original(args, options)
    if (stream == null) return stream
    const src = peerKey(args.request.peer?.id)
    const dst = idKey(args.connection.remotePeer)
    const circuit = [...this.circuits].find(c => !c.established && c.src === src && c.dst === dst)
    if (circuit != null) {
      circuit.established = true
      stream.addEventListener('close', () => { this.circuits.delete(circuit) }, { once: true })
    }
    return stream
  }
}

/** The internal part of libp2p the client needs: listening on new addresses after start. */
interface TransportManagerView {
  listen: (addrs: ReturnType<typeof multiaddr>[]) => Promise<void>
}

/**
 * Starts relay reservations when the node turns out not to be dialable. libp2p
 * listens only on the addresses it started with; its transport manager takes
 * more later, which is how `/p2p-circuit` is added once the node is private.
 */
export class RelayClient {
  private listening = false

  constructor (private readonly libp2p: Libp2p, private readonly log: Logger) {}

  async apply (reachability: Reachability): Promise<void> {
    if (reachability !== 'private' || this.listening) return
    this.listening = true
    const transports = (this.libp2p as unknown as { components: { transportManager: TransportManagerView } }).components.transportManager
    await transports.listen(Array.from({ length: RELAY_RESERVATIONS_WANTED }, () => multiaddr('/p2p-circuit')))
    this.log.info({ relays: RELAY_RESERVATIONS_WANTED }, 'this node is behind a NAT: looking for relays')
  }

  /** Our addresses through relays that hold a reservation for us. */
  relayAddresses (): string[] {
    return this.libp2p.getMultiaddrs().filter(isCircuit).map(a => a.toString())
  }
}
