// Faults scenarios "SSE clients that never read" and "connection flood": what a daemon holds
// when API clients or peers on this machine ask for more than it should give.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CLI, MB, apiRequest, rssOf, tempDir } from '../lib.js'

const SLEEPERS = 20
const TEXT_BYTES = 1024
/**
 * Texts of the event stream scenario: 8 KiB, so that each sleeper is sent ~14 MB in the flow,
 * beyond what the kernel's socket buffers on loopback take (up to 6 MB received + 4 MB sent):
 * the rest is the daemon's to hold, or not.
 */
const SSE_TEXT_BYTES = 8 * 1024
/** Messages per second from A to B while the sleepers are connected. */
const RATE = 40
/** Longer than the stall timeout of an event stream (30 s): the sleepers get let go meanwhile. */
const FLOW_MS = 45_000
const BASELINE_MS = 10_000
const FLOOD_CONNECTIONS = 600
/** Dials per second: under a local node's inbound rate limit, so that only the cap refuses. */
const FLOOD_RATE = 50
const FLOOD_MESSAGES = 20
const WAIT_TIMEOUT = 60_000

export const scenarios = [
  {
    name: 'SSE clients that never read',
    description: `${SLEEPERS} event stream clients stop reading while A sends B ${RATE} × ${SSE_TEXT_BYTES / 1024} KiB texts a second for ${FLOW_MS / 1000} s; delivered/lost: texts seen by B's one client that reads`,
    run: sseSleepers
  },
  {
    name: 'connection flood',
    description: `${FLOOD_CONNECTIONS} connections from one peer on 127.0.0.1 to a daemon, ${FLOOD_RATE} a second; accepted: connections it kept open; delivered/lost: ${FLOOD_MESSAGES} texts from a peer connected before the flood, sent after it`,
    run: connectionFlood
  }
]

async function sseSleepers ({ log }) {
  const work = await tempDir('octet-bench-sse-')
  const daemons = []
  const sockets = []
  try {
    const b = await Daemon.start(join(work.dir, 'b'))
    daemons.push(b)
    const a = await Daemon.start(join(work.dir, 'a'), [b.tcpAddress])
    daemons.push(a)
    await b.api('POST', '/v1/contacts', { peerId: a.peerId })
    const reader = await EventReader.open(b)
    sockets.push(reader.socket)

    // baseline: the same flow with only the client that reads
    log('  baseline: one reading client …')
    const baseRss = rssOf(b.pid)
    const baseline = await flow(a, b, reader, BASELINE_MS)
    const baseGrowth = (Math.max(...baseline.rss) - baseRss) / MB

    log(`  ${SLEEPERS} clients that never read …`)
    const sleepers = []
    for (let i = 0; i < SLEEPERS; i++) {
      const sleeper = await EventReader.open(b)
      sleeper.socket.pause()
      sockets.push(sleeper.socket)
      sleepers.push(sleeper)
    }
    const before = rssOf(b.pid)
    const result = await flow(a, b, reader, FLOW_MS)
    const peak = Math.max(...result.rss)
    const stats = (await b.api('GET', '/v1/stats')).body.counters
    return {
      accepted: result.accepted,
      delivered: result.delivered,
      lost: result.accepted - result.delivered,
      rssGrowthMB: (peak - before) / MB,
      note: `daemon RSS ${Math.round(before / MB)} → peak ${Math.round(peak / MB)} MB; ${stats['api.sse.slow-disconnects'] ?? 0} of ${SLEEPERS} let go with an id to resume after; baseline (1 reading client, ${BASELINE_MS / 1000} s): ${baseline.delivered}/${baseline.accepted} delivered, RSS growth ${baseGrowth.toFixed(1)} MB`
    }
  } finally {
    for (const socket of sockets) socket.destroy()
    for (const daemon of daemons.reverse()) await daemon.stop()
    await work.remove()
  }
}

/** A sends B texts at RATE for `ms`; then waits until the reader saw each one. */
async function flow (a, b, reader, ms) {
  const sent = new Set()
  const rss = []
  const started = Date.now()
  let tick = 0
  while (Date.now() - started < ms) {
    const batch = await Promise.all(Array.from({ length: RATE }, async (_, i) => {
      const res = await a.api('POST', '/v1/messages', { to: b.peerId, text: `${tick} ${i} `.padEnd(SSE_TEXT_BYTES, 'x') })
      return res.status === 202 ? res.body.message.id : undefined
    }))
    for (const id of batch) if (id != null) sent.add(id)
    rss.push(rssOf(b.pid))
    tick++
    await sleep(Math.max(0, started + tick * 1000 - Date.now()))
  }
  const deadline = Date.now() + WAIT_TIMEOUT
  while (Date.now() < deadline && [...sent].some(id => !reader.received.has(id))) {
    rss.push(rssOf(b.pid))
    await sleep(250)
  }
  return { accepted: sent.size, delivered: [...sent].filter(id => reader.received.has(id)).length, rss }
}

async function connectionFlood ({ log }) {
  const { createLibp2p } = await import('libp2p')
  const { tcp } = await import('@libp2p/tcp')
  const { noise } = await import('@chainsafe/libp2p-noise')
  const { yamux } = await import('@chainsafe/libp2p-yamux')
  const { multiaddr } = await import('@multiformats/multiaddr')
  const work = await tempDir('octet-bench-flood-')
  const daemons = []
  let flooder
  try {
    const d = await Daemon.start(join(work.dir, 'd'))
    daemons.push(d)
    const e = await Daemon.start(join(work.dir, 'e'), [d.tcpAddress])
    daemons.push(e)
    await d.api('POST', '/v1/contacts', { peerId: e.peerId })
    // E talks to D before the flood: its connection and DM stream are in use
    const first = await e.api('POST', '/v1/messages', { to: d.peerId, text: 'hello' })
    await waitDelivered(e, [first.body.message.id])

    flooder = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], connectionManager: { maxConnections: 10_000 } })
    const target = multiaddr(d.tcpAddress)
    const before = rssOf(d.pid)
    let peak = before
    log(`  ${FLOOD_CONNECTIONS} connections …`)
    for (let i = 0; i < FLOOD_CONNECTIONS; i += FLOOD_RATE) {
      const started = Date.now()
      for (let k = 0; k < FLOOD_RATE; k++) await flooder.dial(target, { force: true, signal: AbortSignal.timeout(10_000) }).catch(() => {})
      peak = Math.max(peak, rssOf(d.pid))
      await sleep(Math.max(0, 1000 - (Date.now() - started)))
    }
    const kept = flooder.getConnections().length
    const peers = (await d.api('GET', '/v1/peers')).body.peers.length
    peak = Math.max(peak, rssOf(d.pid))

    // a peer that was there before the flood still gets its messages through
    const ids = []
    for (let i = 0; i < FLOOD_MESSAGES; i++) ids.push((await e.api('POST', '/v1/messages', { to: d.peerId, text: `after the flood ${i}`.padEnd(TEXT_BYTES, 'x') })).body.message.id)
    const delivered = await waitDelivered(e, ids)
    return {
      accepted: kept,
      delivered,
      lost: FLOOD_MESSAGES - delivered,
      rssGrowthMB: (peak - before) / MB,
      note: `${kept} of ${FLOOD_CONNECTIONS} flood connections open at the end (cap 300, E's included: D lists ${peers} peers); daemon RSS ${Math.round(before / MB)} → peak ${Math.round(peak / MB)} MB; baseline: E's first text before the flood delivered`
    }
  } finally {
    await flooder?.stop()
    for (const daemon of daemons.reverse()) await daemon.stop()
    await work.remove()
  }
}

async function waitDelivered (daemon, ids) {
  const deadline = Date.now() + WAIT_TIMEOUT
  let delivered = 0
  while (Date.now() < deadline) {
    const statuses = await Promise.all(ids.map(async id => (await daemon.api('GET', `/v1/messages/${id}`)).body.message?.status))
    delivered = statuses.filter(s => s === 'delivered' || s === 'read').length
    if (delivered === ids.length) break
    await sleep(250)
  }
  return delivered
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/** One `octet daemon` process on 127.0.0.1 (ports picked by the OS), reached over its API. */
class Daemon {
  static async start (dataDir, bootstrap = []) {
    const child = spawn(process.execPath, [CLI, 'daemon', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--log-level', 'error', ...bootstrap.flatMap(b => ['--bootstrap', b])], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc']
    })
    let stderr = ''
    child.stderr.on('data', chunk => { stderr += chunk })
    const ready = await new Promise((resolveReady, reject) => {
      child.on('message', message => { if (message?.type === 'ready') resolveReady(message) })
      child.once('exit', code => { reject(new Error(`daemon exited with ${code} before ready: ${stderr}`)) })
    })
    const daemon = new Daemon(child, ready)
    daemon.token = (await readFile(join(dataDir, 'api.token'), 'utf8')).trim()
    return daemon
  }

  constructor (child, ready) {
    this.child = child
    this.pid = child.pid
    this.peerId = ready.peerId
    this.apiUrl = ready.apiUrl
    this.tcpAddress = ready.addresses.find(a => a.includes('/tcp/') && !a.includes('/ws'))
  }

  async api (method, path, body) {
    return await apiRequest(this.apiUrl, this.token, method, path, body)
  }

  async stop () {
    if (this.child.exitCode != null) return
    const exited = once(this.child, 'exit')
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
}

/** An event stream client on a raw socket: ids of the received messages it has seen. */
class EventReader {
  static async open (daemon) {
    const { port } = new URL(daemon.apiUrl)
    const socket = connect(Number(port), '127.0.0.1')
    const reader = new EventReader(socket)
    socket.write(`GET /v1/events HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${daemon.token}\r\n\r\n`)
    await once(socket, 'data')
    return reader
  }

  constructor (socket) {
    this.socket = socket
    this.received = new Set()
    let tail = ''
    socket.setEncoding('utf8')
    socket.on('error', () => {})
    socket.on('data', chunk => {
      // message ids appear in message.received events' data; chunk framing may split one
      const text = tail + chunk
      for (const match of text.matchAll(/"id":"([0-9a-f]{32})","direction":"in"/g)) {
        if (match[1] != null) this.received.add(match[1])
      }
      tail = text.slice(-200)
    })
  }
}
