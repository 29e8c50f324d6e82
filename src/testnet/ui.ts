import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { ApiFetch } from '../api-socket.js'
import { errorBody } from '../api/errors.js'
import { HostCheck, hostCheckHook } from '../api/hosts.js'
import { WEB_DIST, loadAssets, securityHeaders, staticRoutes } from '../api/routes/ui.js'
import { fromSameOrigin } from '../api/ui-session.js'
import { errorMessage } from '../errors.js'
import type { Testnet } from './index.js'
import type { NodePicture } from './picture.js'
import type { TestnetNode } from './types.js'

/** How long one node may take to answer one question before the picture shows it as not answering. */
const NODE_TIMEOUT = 2_000
/** Pictures are shared this long: several open pages do not multiply the questions to the nodes. */
const PICTURE_TTL = 500

/**
 * `octet testnet --ui`: one page that draws every node of the testnet as a graph, live —
 * connections (relayed ones apart), routing-table sizes, direct, group and mailbox traffic,
 * mailbox contents — and stops or starts a node to show what that changes. It reads each
 * node's API with that node's token, on this machine, and hands the page only the picture;
 * like the daemon's page it answers only loopback names (DNS rebinding) and takes a stop or
 * start only from its own origin.
 */
export async function startTestnetUi (testnet: Testnet, { host, port }: { host: string, port: number }): Promise<{ url: string, close: () => Promise<void> }> {
  const app: FastifyInstance = Fastify({ logger: false })
  app.addHook('onRequest', hostCheckHook(new HostCheck([host])))
  app.addHook('onSend', securityHeaders)
  staticRoutes(app, await loadAssets(WEB_DIST), 'testnet.html')

  const tokens = new Map<string, string>()
  const tokenOf = async (node: TestnetNode): Promise<string> => {
    let token = tokens.get(node.dataDir)
    if (token == null) tokens.set(node.dataDir, token = (await readFile(join(node.dataDir, 'api.token'), 'utf8')).trim())
    return token
  }
  let cached: { at: number, picture: Promise<NodePicture[]> } | undefined
  const picture = async (): Promise<NodePicture[]> => {
    if (cached == null || Date.now() - cached.at > PICTURE_TTL) {
      cached = { at: Date.now(), picture: Promise.all(testnet.nodes.map(async node => await draw(testnet, node, await tokenOf(node)))) }
    }
    return await cached.picture
  }

  app.get('/testnet/state', async (_request, reply) => {
    void reply.header('cache-control', 'no-store')
    return { at: Date.now(), nodes: await picture() }
  })
  const act = (what: 'stop' | 'start') => async (request: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply) => {
    if (!fromSameOrigin(request) || request.headers.origin == null) {
      void reply.code(403)
      return errorBody('HOST_NOT_ALLOWED', 'only the testnet page itself stops and starts nodes')
    }
    if (!testnet.nodes.some(n => n.name === request.params.name)) {
      void reply.code(404)
      return errorBody('NOT_FOUND', `no node ${request.params.name}`)
    }
    if (what === 'stop') await testnet.stopNode(request.params.name)
    else await testnet.startNode(request.params.name, AbortSignal.timeout(60_000))
    cached = undefined
    return { nodes: await picture() }
  }
  app.post<{ Params: { name: string } }>('/testnet/nodes/:name/stop', act('stop'))
  app.post<{ Params: { name: string } }>('/testnet/nodes/:name/start', act('start'))

  await app.listen({ host, port })
  const address = app.server.address()
  const bound = typeof address === 'object' && address != null ? address.port : port
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  return { url: `http://${shown}:${bound}/`, close: async () => { await app.close() } }

  async function draw (net: Testnet, node: TestnetNode, token: string): Promise<NodePicture> {
    const base: NodePicture = { name: node.name, peerId: node.peerId, running: net.isRunning(node.name), peers: [], relays: 0, traffic: { direct: 0, group: 0, mailbox: 0 } }
    if (!base.running) return base
    const api = net.apiOf(node)
    try {
      const [identity, status, peers, stats, mailbox] = await Promise.all([
        get<{ reachability: string, relayAddresses: string[] }>(api, token, '/v1/identity'),
        get<{ routingTableSize: number }>(api, token, '/v1/status'),
        get<{ peers: Array<{ peerId: string, addresses: string[] }> }>(api, token, '/v1/peers'),
        get<{ counters: Record<string, number> }>(api, token, '/v1/stats'),
        get<{ holding: { envelopes: number, recipients: number } }>(api, token, '/v1/mailbox')
      ])
      const sum = (prefix: string): number => Object.entries(stats.counters).reduce((n, [k, v]) => k.startsWith(prefix) ? n + v : n, 0)
      return {
        ...base,
        reachability: identity.reachability,
        routingTableSize: status.routingTableSize,
        relays: identity.relayAddresses.length,
        peers: peers.peers.map(p => ({ peerId: p.peerId, relayed: p.addresses.length > 0 && p.addresses.every(a => a.includes('/p2p-circuit')) })),
        traffic: { direct: sum('dm.'), group: sum('group.'), mailbox: sum('mailbox.') },
        mailbox: { envelopes: mailbox.holding.envelopes, recipients: mailbox.holding.recipients }
      }
    } catch (err) {
      return { ...base, error: errorMessage(err) }
    }
  }
}

async function get<T> (api: ApiFetch, token: string, path: string): Promise<T> {
  const res = await api(path, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(NODE_TIMEOUT) })
  if (!res.ok) throw new Error(`${path} answered ${res.status}`)
  return await res.json() as T
}
