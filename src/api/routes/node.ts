import type { FastifyInstance } from 'fastify'
import type { ConnectedPeer, NetworkStanding, NodeStatus, PeerSummary } from '../../node/index.js'
import { OctetError } from '../../errors.js'
import type { StoreHealth } from '../../store/database.js'
import { clientGone } from '../signal.js'
import { peerIdSchema, peerSummarySchema, stringArray } from '../schemas.js'

/** What the node routes need from the node; OctetNode provides it. */
export interface NodeView {
  readonly peerId: string
  listenAddresses: () => string[]
  announceAddresses: () => string[]
  standing: () => NetworkStanding
  connectedPeers: () => ConnectedPeer[]
  findPeerInDht: (peerId: string, signal?: AbortSignal) => Promise<PeerSummary>
  hangUp: (peerId: string, signal?: AbortSignal) => Promise<boolean>
  status: () => NodeStatus
}

const epochMs = { type: 'number', description: 'ms since the epoch' } as const

const statusSchema = {
  type: 'object',
  required: ['peerId', 'peers', 'minPeers', 'connectivity', 'routingTableSize', 'bootstrap', 'reconnect'],
  properties: {
    peerId: { type: 'string' },
    peers: { type: 'integer', description: 'distinct peers with an open connection' },
    minPeers: { type: 'integer', description: 'below this many peers the node keeps dialling its bootstrap and known peers' },
    connectivity: { type: 'string', enum: ['isolated', 'low', 'ok'], description: 'isolated: no peer; low: fewer than minPeers' },
    routingTableSize: { type: 'integer', description: 'peers in the DHT routing table' },
    bootstrap: { ...stringArray, description: 'configured bootstrap peers' },
    reconnect: {
      type: 'object',
      required: ['attempts', 'consecutiveFailures'],
      description: 'the reconnect loop; a field is absent until it has a value',
      properties: {
        attempts: { type: 'integer', description: 'bootstrap/reconnect attempts since start' },
        consecutiveFailures: { type: 'integer', description: 'attempts in a row that brought no new connection (drives the backoff)' },
        lastAttemptAt: epochMs,
        lastOutcome: { type: 'string', enum: ['connected', 'failed', 'no-new-peers'] },
        lastError: { type: 'string', description: 'first dial error of the last attempt that had one' },
        lastConnectedAt: { ...epochMs, description: 'last time a peer connected (ms since the epoch)' },
        nextAttemptAt: { ...epochMs, description: 'next attempt (ms since the epoch); absent while the node has minPeers' },
        routingRefreshAt: { ...epochMs, description: 'last self-lookup after a reconnection (ms since the epoch)' }
      }
    }
  }
} as const

export interface NodeRoutesInit {
  node: NodeView
  version: string
  startedAt: number
  storeHealth?: () => StoreHealth
}

export async function nodeRoutes (app: FastifyInstance, { node, version, startedAt, storeHealth }: NodeRoutesInit): Promise<void> {
  app.get('/v1/health', {
    config: { public: true },
    schema: {
      operationId: 'getHealth',
      summary: 'Liveness check; needs no token. `degraded`: the daemon runs and serves reads, but something (see `reasons`) keeps it from working fully',
      tags: ['node'],
      response: {
        200: {
          type: 'object',
          required: ['status', 'version', 'uptimeSeconds'],
          properties: {
            status: { type: 'string', enum: ['ok', 'degraded'] },
            version: { type: 'string' },
            uptimeSeconds: { type: 'number' },
            reasons: {
              type: 'array',
              description: 'why the daemon is degraded, with what to do; absent when ok',
              items: {
                type: 'object',
                required: ['code', 'message', 'since'],
                properties: { code: { type: 'string', enum: ['DISK_FULL'] }, message: { type: 'string' }, since: epochMs }
              }
            }
          }
        }
      }
    }
  }, async () => {
    const uptimeSeconds = Math.round((Date.now() - startedAt) / 1000)
    const store = storeHealth?.()
    if (store == null || store.writable) return { status: 'ok', version, uptimeSeconds }
    return { status: 'degraded', version, uptimeSeconds, reasons: [{ code: store.reason, message: store.error.message, since: store.since }] }
  })

  app.get('/v1/identity', {
    schema: {
      operationId: 'getIdentity',
      summary: "This node's PeerId, its addresses, and whether peers can reach it",
      tags: ['node'],
      response: {
        200: {
          type: 'object',
          required: ['peerId', 'listenAddresses', 'announceAddresses', 'reachability', 'reachabilitySource', 'publicAddresses', 'observedAddresses', 'relayAddresses', 'relayService'],
          properties: {
            peerId: { type: 'string' },
            listenAddresses: { ...stringArray, description: 'where the transports are bound (port 0 resolved, every interface of a wildcard), with /p2p/<peerId>: dialable at once from the networks they are on; give one to a peer to bootstrap from' },
            announceAddresses: {
              ...stringArray,
              description: "what peers are told to dial (libp2p's advertised addresses): relay (/p2p-circuit) and AutoNAT-confirmed public addresses, private ones only while nothing better exists, loopback only on a loopback-only node. Differs from listenAddresses: empty on a public node until AutoNAT confirms an address, and relay addresses appear only here"
            },
            reachability: {
              type: 'string',
              enum: ['public', 'private', 'unknown'],
              description: 'public: peers can dial this node (AutoNAT confirmed an address, or declared); private: behind a NAT; unknown: neither shown yet (e.g. a LAN or local testnet)'
            },
            reachabilitySource: { type: 'string', enum: ['declared', 'autonat', 'nat-detection', 'none'] },
            publicAddresses: { ...stringArray, description: 'addresses AutoNAT confirmed peers can dial' },
            observedAddresses: { ...stringArray, description: 'where peers saw our connections come from, when that is not one of our own addresses (a NAT)' },
            relayAddresses: { ...stringArray, description: '/p2p-circuit addresses: relays holding a reservation for this node' },
            relayService: {
              type: 'object',
              required: ['offered'],
              description: 'what this node gives others as a circuit relay',
              properties: {
                offered: { type: 'boolean' },
                disabled: { type: 'boolean' },
                reservations: { type: 'integer' },
                circuits: { type: 'integer' },
                refusedCircuits: { type: 'integer' }
              }
            }
          }
        }
      }
    }
  }, async () => {
    const standing = node.standing()
    return {
      peerId: node.peerId,
      listenAddresses: node.listenAddresses(),
      announceAddresses: node.announceAddresses(),
      reachability: standing.reachability,
      reachabilitySource: standing.source,
      publicAddresses: standing.confirmedAddresses,
      observedAddresses: standing.observedAddresses,
      relayAddresses: standing.relayAddresses,
      relayService: standing.relayService
    }
  })

  app.get('/v1/status', {
    schema: {
      operationId: 'getStatus',
      summary: 'Connectivity: peer count, bootstrap peers, and what the reconnect loop did last and does next',
      tags: ['node'],
      response: { 200: statusSchema }
    }
  }, async () => {
    const { peers, minPeers, connectivity, routingTableSize, bootstrap, ...reconnect } = node.status()
    return { peerId: node.peerId, peers, minPeers, connectivity, routingTableSize, bootstrap, reconnect }
  })

  app.get('/v1/peers', {
    schema: {
      operationId: 'listPeers',
      summary: 'Peers this node is connected to, with the addresses of the connections',
      tags: ['node'],
      response: {
        200: {
          type: 'object',
          required: ['peers'],
          properties: {
            peers: {
              type: 'array',
              items: {
                type: 'object',
                required: ['peerId', 'addresses', 'direction', 'openedAt'],
                properties: {
                  peerId: { type: 'string' },
                  addresses: stringArray,
                  direction: { type: 'string', enum: ['inbound', 'outbound'] },
                  openedAt: { type: 'number', description: 'ms since the epoch' }
                }
              }
            }
          }
        }
      }
    }
  }, async () => ({ peers: node.connectedPeers() }))

  app.delete<{ Params: { peerId: string } }>('/v1/peers/:peerId', {
    schema: {
      operationId: 'disconnectPeer', errors: [404],
      summary: 'Close every connection to a peer (it may connect again later)',
      tags: ['node'],
      params: { type: 'object', required: ['peerId'], properties: { peerId: peerIdSchema } },
      response: { 204: { type: 'null' } }
    }
  }, async (request, reply) => {
    if (!await node.hangUp(request.params.peerId, clientGone(reply))) {
      throw new OctetError('NOT_FOUND', `not connected to ${request.params.peerId}`)
    }
    void reply.code(204)
  })

  app.get<{ Params: { peerId: string } }>('/v1/dht/peers/:peerId', {
    schema: {
      operationId: 'findPeer', errors: [404, 504],
      summary: "Look a peer's addresses up in the DHT (a network query, not the local peer store)",
      tags: ['node'],
      params: { type: 'object', required: ['peerId'], properties: { peerId: peerIdSchema } },
      response: { 200: peerSummarySchema }
    }
  }, async (request, reply) => await node.findPeerInDht(request.params.peerId, clientGone(reply)))
}
