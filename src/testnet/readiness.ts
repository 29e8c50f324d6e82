/**
 * When a testnet is ready: plain testnets once their nodes find each other through DHT
 * lookups (every pair, or rounds of them for many nodes), NAT testnets once every node is
 * connected to node-0 and every NATed one holds a relay reservation. It only asks the
 * daemons' HTTP APIs; spawning and placing them is index.ts's and nat.ts's.
 */
import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { setTimeout as delayFor } from 'node:timers/promises'
import type { ApiFetch } from '../api-socket.js'
import { createOctetClient, ok, type OctetClient } from '../client/index.js'
import { dataDirPaths } from '../datadir.js'
import { OctetError } from '../errors.js'
import { SECOND } from '../units.js'
import type { TestnetNode, TestnetProgress } from './types.js'

/** The least time readiness may take before the testnet gives up; more for many nodes (readyTimeout). */
export const DHT_READY_TIMEOUT = 60 * SECOND
/** How long every node of a NAT testnet has to connect to the bootstrap node once all are up. */
export const BOOTSTRAP_READY_TIMEOUT = 30 * SECOND
/** Pause between two looks at a node's peers (a local socket round trip: cheap). */
const BOOTSTRAP_POLL_INTERVAL = 100

/**
 * CPU time a readiness lookup may cost across the daemons it touches (the HTTP request, the DHT
 * walk, the Noise handshake and identify of the connection it ends in). Measured ~150 ms on
 * 2 cores (14 nodes, 182 lookups in 27 s); at 50 nodes the daemons' own background work (DHT
 * self-queries, mailbox collection, prekey publishing, gossipsub) took the whole machine and
 * 350 lookups did not finish in 148 s at 500 ms, so 1 s each. The deadline beyond
 * DHT_READY_TIMEOUT grows by this per lookup, divided among the CPUs, since the lookups run a
 * bounded number at a time and so take time in proportion to their count.
 */
export const DHT_READY_CPU_TIME_PER_LOOKUP = SECOND
/** Up to this many nodes, readiness checks every ordered pair; beyond, rounds (see waitForDht). */
export const FULL_CHECK_MAX_NODES = 16
/** Readiness lookups in flight per CPU. */
export const LOOKUP_CONCURRENCY_PER_CPU = 4
/**
 * One readiness lookup over HTTP: longer than the daemon's own DHT lookup timeout (15 s), so a
 * slow walk on a busy machine ends with the daemon's answer instead of being cut off at 10 s.
 */
const LOOKUP_TIMEOUT = 20 * SECOND
/** Pause before a pair whose DHT lookup failed tries again: doubled after each failure, up to the max. */
const DHT_RETRY_DELAY = 250
const DHT_RETRY_DELAY_MAX = 2 * SECOND
const DHT_PROGRESS_INTERVAL = SECOND

/** One DHT lookup of the readiness check, retried until it succeeds. */
interface Pair {
  from: TestnetNode
  /** the API of `from`, which looks `to` up */
  client: OctetClient
  to: TestnetNode
  failures: number
  /** ms since the epoch before which it is not retried */
  notBefore: number
}

/** What a readiness wait looks at and reports to. */
export interface ReadinessCheck {
  /** the nodes, node-0 first */
  nodes: TestnetNode[]
  /** how to reach a node's API from here */
  apiOf: (node: TestnetNode) => ApiFetch
  onProgress: (p: TestnetProgress) => void
  /** the testnet's directory, where the daemons' logs are (named in errors) */
  dir: string
  signal?: AbortSignal
}

/**
 * Nodes look each other up in the DHT: every ordered pair up to FULL_CHECK_MAX_NODES nodes;
 * beyond, rounds of n lookups (round k: node i looks up node i+k, k = 1, 2, 4, … and n/2),
 * in which every node searches once and is found once. Every pair costs a DHT walk that
 * ends in a new Noise connection: measured on this 2-core machine, 14 nodes' 182 lookups took
 * 27 s, and 870 for 30 nodes ran at ~3 s each with other work on the machine — n·(n−1)
 * grows past any sensible wait (2,450 pairs at 50 nodes), while the rounds still show every
 * node both searching and being found at several distances. `dht` progress says which.
 * Lookups run at most LOOKUP_CONCURRENCY_PER_CPU per CPU at a time: all at once (870 HTTP
 * requests for 30 nodes) starved the daemons on 2 cores so badly that a lookup or even
 * GET /v1/peers took more than 10 s to answer, and 863 of 870 still failed after 60 s. A
 * failed lookup goes back into the queue after a pause that doubles per failure, so the
 * others go on meanwhile. The deadline grows with the number of lookups (readyTimeout).
 */
export async function waitForDht ({ nodes, apiOf, onProgress, dir, signal }: ReadinessCheck): Promise<void> {
  const n = nodes.length
  const clients = await Promise.all(nodes.map(async node => await clientOf(node, apiOf(node))))
  const pairs: Pair[] = []
  for (const k of readinessOffsets(n)) {
    for (let i = 0; i < n; i++) pairs.push({ from: nodes[i] as TestnetNode, client: clients[i] as OctetClient, to: nodes[(i + k) % n] as TestnetNode, failures: 0, notBefore: 0 })
  }
  const total = pairs.length
  const timeoutMs = readyTimeout(total)
  const deadline = Date.now() + timeoutMs
  let found = 0
  let failedAttempts = 0
  let reportedAt = Date.now()
  onProgress({ stage: 'dht', found, total, failedAttempts, allPairs: total === n * (n - 1) })
  const queue = pairs
  const worker = async (): Promise<void> => {
    while (signal?.aborted !== true && Date.now() < deadline) {
      const now = Date.now()
      const index = queue.findIndex(p => p.notBefore <= now)
      if (index === -1) {
        if (queue.length === 0) return
        // only pairs waiting out their retry pause are left
        await sleep(Math.min(...queue.map(p => p.notBefore)) - now, signal)
        continue
      }
      const [pair] = queue.splice(index, 1) as [Pair]
      if (await lookup(pair.client, pair.to.peerId, signal)) {
        found++
        // progress at most once per interval, and always the last
        if (found === total || Date.now() - reportedAt >= DHT_PROGRESS_INTERVAL) {
          reportedAt = Date.now()
          onProgress({ stage: 'dht', found, total, failedAttempts, allPairs: total === n * (n - 1) })
        }
      } else {
        failedAttempts++
        pair.notBefore = Date.now() + Math.min(DHT_RETRY_DELAY * 2 ** pair.failures, DHT_RETRY_DELAY_MAX)
        pair.failures++
        queue.push(pair)
      }
    }
  }
  await Promise.all(Array.from({ length: lookupConcurrency() }, worker))
  if (signal?.aborted === true) throw new OctetError('TESTNET_NOT_READY', 'aborted while waiting for the DHT')
  if (found < total) {
    onProgress({ stage: 'dht', found, total, failedAttempts, allPairs: total === n * (n - 1) })
    const example = queue[0]
    throw new OctetError('TESTNET_NOT_READY', `after ${Math.round(timeoutMs / SECOND)} s, ${total - found} of ${total} DHT lookups still fail (e.g. ${example?.from.name} cannot find ${example?.to.name}); see the daemons' logs in ${dir}`)
  }
}

/**
 * NAT testnets: ready once every node lists node-0 among its connected peers and every
 * node behind a NAT holds a relay reservation (it found out that it is behind a NAT and
 * has a `/p2p-circuit` address others can dial). Each node dialled node-0 (its bootstrap
 * peer) on its own; a NATed node's connection goes out through its router.
 */
export async function waitForBootstrap ({ nodes, apiOf, onProgress, dir, signal }: ReadinessCheck): Promise<void> {
  const [bootstrap, ...others] = nodes
  if (bootstrap == null) return
  const deadline = Date.now() + BOOTSTRAP_READY_TIMEOUT
  let connected = 0
  onProgress({ stage: 'bootstrap', connected, total: others.length })
  const waiting: TestnetNode[] = []
  await Promise.all(others.map(async node => {
    const client = await clientOf(node, apiOf(node))
    while (signal?.aborted !== true) {
      if (await isConnectedTo(client, bootstrap.peerId, signal) && (node.placement?.reach !== 'nat' || await holdsRelayReservation(client, signal))) {
        onProgress({ stage: 'bootstrap', connected: ++connected, total: others.length })
        return
      }
      if (Date.now() + BOOTSTRAP_POLL_INTERVAL > deadline) {
        waiting.push(node)
        return
      }
      await sleep(BOOTSTRAP_POLL_INTERVAL, signal)
    }
  }))
  if (signal?.aborted === true) throw new OctetError('TESTNET_NOT_READY', 'aborted while waiting for the nodes to connect to node-0')
  if (waiting.length > 0) {
    throw new OctetError('TESTNET_NOT_READY', `after ${BOOTSTRAP_READY_TIMEOUT / SECOND} s, ${waiting.map(n => n.name).join(', ')} still not connected to ${bootstrap.name}; see the daemons' logs in ${dir}`)
  }
}

/** How long `lookups` readiness lookups may take: at least DHT_READY_TIMEOUT, more the more lookups run a bounded number at a time. */
export function readyTimeout (lookups: number): number {
  return DHT_READY_TIMEOUT + Math.round(lookups * DHT_READY_CPU_TIME_PER_LOOKUP / availableParallelism())
}

/**
 * Ring offsets of the readiness rounds for n nodes: 1 … n−1 (every ordered pair) up to
 * FULL_CHECK_MAX_NODES nodes; beyond, the powers of two below n and n/2, so each node looks
 * up nodes near and far along the ring (launch order, unrelated to DHT distance).
 */
export function readinessOffsets (n: number): number[] {
  if (n <= FULL_CHECK_MAX_NODES) return Array.from({ length: Math.max(0, n - 1) }, (_, i) => i + 1)
  const offsets = new Set<number>()
  for (let k = 1; k < n; k *= 2) offsets.add(k)
  offsets.add(Math.floor(n / 2))
  return [...offsets].sort((a, b) => a - b)
}

function lookupConcurrency (): number {
  return Math.max(4, LOOKUP_CONCURRENCY_PER_CPU * availableParallelism())
}

/** Resolves after `ms`, or at once when `signal` aborts. */
async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  await delayFor(ms, undefined, { signal }).catch(() => {})
}

/** The typed client of a node's API, over `transport`, with the token from its data directory. */
async function clientOf (node: TestnetNode, transport: ApiFetch): Promise<OctetClient> {
  const token = (await readFile(dataDirPaths(node.dataDir).token, 'utf8')).trim()
  return createOctetClient({ baseUrl: node.apiUrl, token, transport })
}

/** A request's signal: given up after LOOKUP_TIMEOUT or when `signal` aborts. */
function within (signal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(LOOKUP_TIMEOUT)
  return signal == null ? timeout : AbortSignal.any([signal, timeout])
}

async function lookup (client: OctetClient, peerId: string, signal?: AbortSignal): Promise<boolean> {
  try {
    ok(await client.GET('/v1/dht/peers/{peerId}', { params: { path: { peerId } }, signal: within(signal) }))
    return true
  } catch {
    return false
  }
}

/** Whether the node behind `client` has a relay address: a relay holds a reservation for it. */
async function holdsRelayReservation (client: OctetClient, signal?: AbortSignal): Promise<boolean> {
  try {
    return ok(await client.GET('/v1/identity', { signal: within(signal) })).relayAddresses.length > 0
  } catch {
    return false
  }
}

/** Whether the node behind `client` lists `peerId` among its connected peers. */
async function isConnectedTo (client: OctetClient, peerId: string, signal?: AbortSignal): Promise<boolean> {
  try {
    return ok(await client.GET('/v1/peers', { signal: within(signal) })).peers.some(p => p.peerId === peerId)
  } catch {
    return false
  }
}
