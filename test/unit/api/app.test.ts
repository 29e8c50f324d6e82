import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { buildApi } from '../../../src/api/app.js'
import type { NodeView } from '../../../src/api/routes/node.js'
import { OctetError } from '../../../src/errors.js'
import type { ConnectedPeer, NetworkStanding, NodeStatus, PeerSummary } from '../../../src/node/index.js'

const TOKEN = 'test-token-0123456789abcdefghijklmnopqrstuvwxyz'

let self: string
let known: string
let unknown: string
beforeAll(async () => {
  const ids = await Promise.all([1, 2, 3].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
  ;[self, known, unknown] = ids as [string, string, string]
})

/** An in-memory node: the API layer is tested alone, the real node in test/integration. */
class FakeNode implements NodeView {
  hungUp: string[] = []
  constructor (readonly peerId: string, private readonly peers: ConnectedPeer[], private readonly dht: Map<string, PeerSummary>) {}
  listenAddresses (): string[] { return ['/ip4/127.0.0.1/tcp/4710'] }
  announceAddresses (): string[] { return [`/ip4/127.0.0.1/tcp/4710/p2p/${this.peerId}`] }
  connectedPeers (): ConnectedPeer[] { return this.peers }
  standing (): NetworkStanding {
    return {
      reachability: 'private',
      source: 'nat-detection',
      confirmedAddresses: [],
      observedAddresses: ['/ip4/198.51.100.7/tcp/61234'],
      relayAddresses: [`/ip4/198.51.100.1/tcp/4710/p2p/${known}/p2p-circuit/p2p/${this.peerId}`],
      relayService: { offered: false, reservations: 0, circuits: 0, refusedCircuits: 0 }
    }
  }

  async findPeerInDht (peerId: string): Promise<PeerSummary> {
    const found = this.dht.get(peerId)
    if (found == null) throw new OctetError('PEER_NOT_FOUND', `no peer in the DHT knows ${peerId}`)
    return found
  }

  async hangUp (peerId: string): Promise<boolean> {
    this.hungUp.push(peerId)
    return this.peers.some(p => p.peerId === peerId)
  }

  status (): NodeStatus {
    return {
      peers: this.peers.length,
      minPeers: 3,
      connectivity: 'low',
      routingTableSize: 1,
      bootstrap: [`/ip4/127.0.0.1/tcp/5000/p2p/${known}`],
      attempts: 4,
      consecutiveFailures: 0,
      lastAttemptAt: 1_700_000_001_000,
      lastOutcome: 'failed',
      lastError: 'ECONNREFUSED',
      nextAttemptAt: 1_700_000_002_000
    }
  }
}

let app: FastifyInstance
let node: FakeNode
beforeEach(async () => {
  node = new FakeNode(self,
    [{ peerId: known, addresses: ['/ip4/127.0.0.1/tcp/5000'], direction: 'outbound', openedAt: 1_700_000_000_000 }],
    new Map([[known, { peerId: known, addresses: ['/ip4/127.0.0.1/tcp/5000'] }]]))
  app = await buildApi({ token: TOKEN, node, log: pino({ level: 'silent' }), version: '9.9.9', startedAt: Date.now() })
})
afterEach(async () => { await app.close() })

const auth = { authorization: `Bearer ${TOKEN}` }

async function get (url: string, headers: Record<string, string> = auth): Promise<{ status: number, body: any, headers: Record<string, unknown> }> {
  const res = await app.inject({ method: 'GET', url, headers })
  return { status: res.statusCode, body: res.body === '' ? undefined : res.json(), headers: res.headers }
}

describe('authentication', () => {
  it('serves /v1/health without a token', async () => {
    const res = await get('/v1/health', {})
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ status: 'ok', version: '9.9.9' })
  })

  const refused: Array<[string, Record<string, string>]> = [
    ['no Authorization header', {}],
    ['a wrong token', { authorization: 'Bearer wrong-token' }],
    ['a token one character short', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ['the token with a suffix', { authorization: `Bearer ${TOKEN}x` }],
    ['another scheme', { authorization: `Basic ${TOKEN}` }],
    ['the token without a scheme', { authorization: TOKEN }],
    ['"Bearer" and no token', { authorization: 'Bearer ' }],
    ['two tokens', { authorization: `Bearer ${TOKEN} ${TOKEN}` }]
  ]
  it.each(refused)('refuses /v1/identity with %s: 401 UNAUTHORIZED and WWW-Authenticate', async (_name, headers) => {
    const res = await get('/v1/identity', headers)
    expect(res.status).toBe(401)
    expect(res.body).toMatchObject({ error: { code: 'UNAUTHORIZED' } })
    expect(typeof res.body.error.message).toBe('string')
    expect(String(res.headers['www-authenticate'])).toMatch(/^Bearer /)
  })

  it('serves /v1/identity with the token', async () => {
    const res = await get('/v1/identity')
    expect(res.status).toBe(200)
    expect(res.body).toEqual({
      peerId: self,
      listenAddresses: ['/ip4/127.0.0.1/tcp/4710'],
      announceAddresses: [`/ip4/127.0.0.1/tcp/4710/p2p/${self}`],
      reachability: 'private',
      reachabilitySource: 'nat-detection',
      publicAddresses: [],
      observedAddresses: ['/ip4/198.51.100.7/tcp/61234'],
      relayAddresses: [`/ip4/198.51.100.1/tcp/4710/p2p/${known}/p2p-circuit/p2p/${self}`],
      relayService: { offered: false, reservations: 0, circuits: 0, refusedCircuits: 0 }
    })
  })

  it('checks the token before anything else: an unknown route without a token is 401, not 404', async () => {
    expect((await get('/v1/nothing-here', {})).status).toBe(401)
  })
})

describe('routes and errors', () => {
  it('answers an unknown route with 404 JSON NOT_FOUND', async () => {
    const res = await get('/v1/nothing-here')
    expect(res.status).toBe(404)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.body).toMatchObject({ error: { code: 'NOT_FOUND' } })
  })

  it('answers a URL it cannot decode with 400 in the same error shape', async () => {
    const res = await get('/v1/dht/peers/%zz')
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({ error: { code: 'BAD_REQUEST' } })
  })

  it('lists connected peers', async () => {
    const res = await get('/v1/peers')
    expect(res.status).toBe(200)
    expect(res.body.peers).toEqual([{ peerId: known, addresses: ['/ip4/127.0.0.1/tcp/5000'], direction: 'outbound', openedAt: 1_700_000_000_000 }])
  })

  it('reports connectivity and the reconnect loop on /v1/status, behind the token', async () => {
    expect((await get('/v1/status', {})).status).toBe(401)
    const res = await get('/v1/status')
    expect(res.status).toBe(200)
    expect(res.body).toEqual({
      peerId: self,
      peers: 1,
      minPeers: 3,
      connectivity: 'low',
      routingTableSize: 1,
      bootstrap: [`/ip4/127.0.0.1/tcp/5000/p2p/${known}`],
      reconnect: { attempts: 4, consecutiveFailures: 0, lastAttemptAt: 1_700_000_001_000, lastOutcome: 'failed', lastError: 'ECONNREFUSED', nextAttemptAt: 1_700_000_002_000 }
    })
  })

  const badIds: Array<{ name: string, id: string, status: number }> = [
    { name: 'not base58', id: 'not-a-peer-id', status: 400 },
    { name: 'base58 but too short', id: 'short', status: 400 },
    { name: 'made of characters base58 leaves out', id: '0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl', status: 400 },
    // longer than the router takes a parameter: refused before routing, still in octet's error shape
    { name: 'far too long', id: 'x'.repeat(200), status: 414 }
  ]
  it.each(badIds)('refuses a PeerId $name with $status BAD_REQUEST', async ({ id, status }) => {
    const res = await get(`/v1/dht/peers/${id}`)
    expect(res.status).toBe(status)
    expect(res.body).toMatchObject({ error: { code: 'BAD_REQUEST' } })
  })

  it('refuses a base58 string that is not a PeerId with 400 (from the node, INVALID_PEER_ID)', async () => {
    // passes the schema (base58, long enough) but does not decode to a PeerId: the real node's parsePeerId says so
    node.findPeerInDht = async () => { throw new OctetError('INVALID_PEER_ID', 'not a PeerId') }
    const res = await get(`/v1/dht/peers/${'1'.repeat(46)}`)
    expect(res.status).toBe(400)
    expect(res.body).toMatchObject({ error: { code: 'INVALID_PEER_ID' } })
  })

  it('answers /v1/dht/peers/<id> with what the DHT found', async () => {
    const res = await get(`/v1/dht/peers/${known}`)
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ peerId: known, addresses: ['/ip4/127.0.0.1/tcp/5000'] })
  })

  it('maps PEER_NOT_FOUND from the node to 404', async () => {
    const res = await get(`/v1/dht/peers/${unknown}`)
    expect(res.status).toBe(404)
    expect(res.body).toMatchObject({ error: { code: 'PEER_NOT_FOUND' } })
  })

  it('maps an unexpected error to 500 INTERNAL without leaking its message', async () => {
    node.findPeerInDht = async () => { throw new Error('secret internals') }
    const res = await get(`/v1/dht/peers/${known}`)
    expect(res.status).toBe(500)
    expect(res.body).toMatchObject({ error: { code: 'INTERNAL' } })
    expect(JSON.stringify(res.body)).not.toContain('secret internals')
  })

  it('hangs up on a connected peer with 204, and answers 404 for one it is not connected to', async () => {
    const hungUp = await app.inject({ method: 'DELETE', url: `/v1/peers/${known}`, headers: auth })
    expect(hungUp.statusCode).toBe(204)
    expect(hungUp.body).toBe('')
    const notConnected = await app.inject({ method: 'DELETE', url: `/v1/peers/${unknown}`, headers: auth })
    expect(notConnected.statusCode).toBe(404)
    expect(notConnected.json()).toMatchObject({ error: { code: 'NOT_FOUND' } })
    expect(node.hungUp).toEqual([known, unknown])
  })

  it('refuses an oversized body with 413 before parsing it', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/peers', headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify({ x: 'y'.repeat(100 * 1024) }) })
    expect(res.statusCode).toBe(413)
    expect(res.json()).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } })
  })
})

describe('OpenAPI document', () => {
  it('is public and lists every route with bearer security (health excepted)', async () => {
    const res = await get('/v1/openapi.json', {})
    expect(res.status).toBe(200)
    const doc = res.body
    expect(doc.openapi).toMatch(/^3\./)
    expect(doc.info.version).toBe('9.9.9')
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' })
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/health', '/v1/identity', '/v1/peers', '/v1/peers/{peerId}', '/v1/dht/peers/{peerId}']))
    expect(doc.paths['/v1/health'].get.security).toEqual([])
    for (const [path, method] of [['/v1/identity', 'get'], ['/v1/peers', 'get'], ['/v1/peers/{peerId}', 'delete'], ['/v1/dht/peers/{peerId}', 'get']] as const) {
      expect(doc.paths[path][method].security, `${method} ${path}`).toEqual([{ bearer: [] }])
    }
    expect(doc.paths['/v1/dht/peers/{peerId}'].get.parameters).toEqual([expect.objectContaining({ name: 'peerId', in: 'path', required: true })])
    // the document itself is not a documented route
    expect(Object.keys(doc.paths)).not.toContain('/v1/openapi.json')
  })
})
