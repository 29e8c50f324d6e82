// Benchmark "mailbox": offline delivery across daemon processes. In a 10-node testnet, A
// (node-1) has a session with C (node-2) from one delivered message; C stops, A sends 20 ×
// 1 KiB texts (all `stored` at mailbox peers), A stops, C starts again on its data directory:
// the time until all 20 are in C's history, from the spawn and from "ready". Beside it, what a
// mailbox stores per message (GET /v1/mailbox holding.bytes over every node), and as baseline,
// in the same run and testnet, the same 20 texts delivered directly while C is online.
// Then, with daemons in this process (a recipient's DM handler can be taken away there):
// a recipient online but unreachable for A (no /octet/dm handler, as behind a NAT A cannot
// dial) gets A's message through its mailboxes; the time from A's `stored` to the message in
// its history, for a recipient that watches its mailboxes (notify) and one that only polls
// (every COLLECT_INTERVAL, as before). BENCH_MAILBOX_PHASES=notify runs this phase alone.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { stats, tempDir } from './lib.js'

export const name = 'mailbox'
export const description = 'offline delivery: 20 × 1 KiB texts through mailbox peers vs directly, bytes a mailbox stores per message, and stored → collected with notify vs poll'

const NODES = 10
const MESSAGES = 20
const TEXT_BYTES = 1024
const DIRECT_ROUNDS = 3
/** How often the benchmark asks a daemon how far it got: the resolution of the times measured. */
const POLL_INTERVAL = 25
const WAIT_TIMEOUT = 60_000
/** Messages to a recipient that watches its mailboxes, one at a time: stored → in its history. */
const NOTIFY_ROUNDS = 10
/** The same to a recipient that polls only: each waits for its next poll (up to COLLECT_INTERVAL). */
const POLL_ROUNDS = 3

/** BENCH_MAILBOX_PHASES=notify runs the notify-vs-poll phase alone (default: both). */
const PHASES = (process.env.BENCH_MAILBOX_PHASES ?? 'testnet,notify').split(',')

export async function run ({ log = () => {} } = {}) {
  const rows = PHASES.includes('testnet') ? await runTestnet({ log }) : []
  if (PHASES.includes('notify')) rows.push(...await runNotify({ log }))
  return { rows }
}

async function runTestnet ({ log }) {
  // dist/ is built by `npm run bench` (prebench)
  const { Testnet } = await import('../../dist/testnet/index.js')
  const { ENTRY_OVERHEAD_BYTES } = await import('../../dist/mailbox/constants.js')
  const { COLLECT_FIRST_DELAY } = await import('../../dist/messaging/constants.js')
  const rows = []
  const add = (metric, value, unit, note = '') => { rows.push({ metric, value: round(value), unit, note }) }
  const range = s => `median of ${s.n} (min ${round(s.min)}, max ${round(s.max)})`

  const work = await tempDir('octet-bench-mailbox-')
  const testnet = new Testnet({ nodes: NODES, dir: work.dir, basePort: 0, logLevel: 'warn' })
  const api = client(testnet)
  try {
    log(`testnet of ${NODES} …`)
    await testnet.start()
    const A = 'node-1'
    const C = 'node-2'
    const a = api.peerId(A)
    const c = api.peerId(C)
    const texts = round => Array.from({ length: MESSAGES }, (_, i) => `${round} ${i} `.padEnd(TEXT_BYTES, 'x'))
    /** A's messages to C with the given ids, as A's history has them. */
    const outgoing = async ids => {
      const byId = new Map((await api.history(A, c)).map(m => [m.id, m]))
      return ids.map(id => byId.get(id))
    }
    const receivedAtC = async ids => {
      const have = new Set((await api.history(C, a)).map(m => m.id))
      return ids.filter(id => have.has(id)).length
    }

    // a session: the first message goes directly, and warms both daemons up
    log('session A → C …')
    const [hello] = await sendAll(api, A, c, ['hello'])
    await poll(async () => (await outgoing([hello]))[0]?.status === 'delivered', 'hello delivered')

    // baseline: C online, the same 20 texts directly
    const directToHistory = []
    const directToDelivered = []
    for (let round = 0; round < DIRECT_ROUNDS; round++) {
      log(`direct round ${round + 1} …`)
      const t0 = performance.now()
      const ids = await sendAll(api, A, c, texts(`direct ${round}`))
      let inHistoryMs
      await poll(async () => {
        inHistoryMs ??= await receivedAtC(ids) === MESSAGES ? performance.now() - t0 : undefined
        return inHistoryMs != null && (await outgoing(ids)).every(m => m?.status === 'delivered')
      }, 'direct messages delivered')
      directToDelivered.push(performance.now() - t0)
      directToHistory.push(inHistoryMs)
    }

    // offline: C stops, A leaves the texts at mailbox peers and stops too
    log('C stops; A sends to the mailboxes …')
    await testnet.stopNode(C)
    const offlineTexts = texts('offline')
    const t0 = performance.now()
    const ids = await sendAll(api, A, c, offlineTexts)
    let stored
    await poll(async () => {
      const messages = await outgoing(ids)
      if (!messages.every(m => m?.status === 'stored')) return false
      stored = messages
      return true
    }, 'all stored at mailboxes')
    const storedMs = performance.now() - t0
    const copies = stored.reduce((sum, m) => sum + m.mailboxes, 0)
    const holdersPerMessage = stats(stored.map(m => m.mailboxes))
    await testnet.stopNode(A)

    // what the mailbox peers hold now (nothing else is held for anyone in this testnet)
    const holding = await Promise.all(testnet.nodes.filter(n => testnet.isRunning(n.name)).map(async n => (await api.call(n.name, 'GET', '/v1/mailbox')).holding))
    const heldBytes = holding.reduce((sum, h) => sum + h.bytes, 0)
    const heldEnvelopes = holding.reduce((sum, h) => sum + h.envelopes, 0)
    if (heldEnvelopes !== copies) throw new Error(`the mailboxes hold ${heldEnvelopes} envelopes, the sender counted ${copies} accepted copies`)

    log('C starts again …')
    const spawnedAt = performance.now()
    await testnet.startNode(C)
    const readyAt = performance.now()
    await poll(async () => await receivedAtC(ids) === MESSAGES, 'C collects its mail')
    const collectedAt = performance.now()
    const received = (await api.history(C, a)).filter(m => ids.includes(m.id))
    if (received.map(m => m.text).join('\n') !== offlineTexts.join('\n')) throw new Error('C did not receive the 20 texts once each and in order')

    const direct = stats(directToHistory)
    const viaMailboxMs = collectedAt - readyAt
    add(`direct (C online): send → all ${MESSAGES} in C's history`, direct.median, 'ms', range(direct))
    add(`direct (C online): send → all ${MESSAGES} delivered at A`, stats(directToDelivered).median, 'ms', range(stats(directToDelivered)))
    add(`mailbox: send (C off) → all ${MESSAGES} stored`, storedMs, 'ms', `at ${holdersPerMessage.min}–${holdersPerMessage.max} mailboxes each`)
    add(`mailbox: C's restart (spawn) → all ${MESSAGES} in C's history`, collectedAt - spawnedAt, 'ms', `of which spawn → ready ${round(readyAt - spawnedAt)} ms`)
    add(`mailbox: C ready → all ${MESSAGES} in C's history`, viaMailboxMs, 'ms', `first collect ${COLLECT_FIRST_DELAY} ms after start; polled every ${POLL_INTERVAL} ms`)
    add('mailbox (ready → history) / direct (send → history)', viaMailboxMs / direct.median, 'x')
    const perCopy = heldBytes / copies
    add('mailbox: bytes charged per message per mailbox', perCopy, 'B', `${heldBytes} B over ${copies} copies (${MESSAGES} messages × ${round(copies / MESSAGES)} holders)`)
    add('plaintext per message', TEXT_BYTES, 'B', 'the text')
    add('mailbox bytes / plaintext', perCopy / TEXT_BYTES, 'x')
    add('mailbox: sealed envelope per message', perCopy - ENTRY_OVERHEAD_BYTES, 'B', `charged bytes minus ${ENTRY_OVERHEAD_BYTES} B per-entry overhead; Signal message + sealing (ephemeral key, tag, framing)`)
    add('sealed envelope / plaintext', (perCopy - ENTRY_OVERHEAD_BYTES) / TEXT_BYTES, 'x')
  } finally {
    await testnet.stop()
    await work.remove()
  }
  return rows
}

async function runNotify ({ log }) {
  const rows = []
  const add = (metric, value, unit, note = '') => { rows.push({ metric, value: round(value), unit, note }) }
  const range = s => `median of ${s.n} (min ${round(s.min)}, max ${round(s.max)})`
  log('notify vs poll (daemons in this process) …')
  const { notify, poll: polled, interval } = await notifyVersusPoll(log)
  const n = stats(notify)
  const p = stats(polled)
  add(`mailbox, recipient online but unreachable, watching: A's "stored" → in its history`, n.median, 'ms', `${range(n)}; one message at a time`)
  add(`mailbox, recipient online but unreachable, polling only: A's "stored" → in its history`, p.median, 'ms', `${range(p)}; polls every ${interval} ms, so 0–${interval} ms`)
  return rows
}

/** Two recipients, both online and unreachable for A: one watches its mailboxes, one polls only. */
async function notifyVersusPoll (log) {
  const { loadDaemonConfig } = await import('../../dist/config.js')
  const { Daemon } = await import('../../dist/daemon.js')
  const { createLogger } = await import('../../dist/logger.js')
  const { COLLECT_INTERVAL, DM_PROTOCOL } = await import('../../dist/messaging/constants.js')
  const work = await tempDir('octet-bench-mailbox-notify-')
  const daemons = []
  const start = async (name, bootstrap, overrides) => {
    const config = loadDaemonConfig({ dataDir: join(work.dir, name), listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', mdns: false, bootstrap, logLevel: 'warn' }, {})
    const daemon = await Daemon.start(config, createLogger('warn', process.stderr), overrides)
    daemons.push(daemon)
    return daemon
  }
  try {
    const boot = await start('boot', [])
    const bootAddr = boot.info().addresses.find(a => a.includes('/tcp/') && !a.includes('/ws'))
    const [a, watching, polling] = await Promise.all([
      start('a', [bootAddr]),
      start('watching', [bootAddr], { collect: { notify: true } }),
      start('polling', [bootAddr], { collect: { notify: false } }),
      ...['m1', 'm2', 'm3', 'm4'].map(async name => await start(name, [bootAddr]))
    ])
    const aId = a.info().peerId
    const history = async (to, id) => (await to.messenger.history(aId, { limit: 1000 })).some(m => m.id === id)
    const status = async id => (await a.messenger.message(id)).status
    const until = async (check, what) => { await poll(check, what) }

    // sessions first, directly; then the recipients stop serving direct messages and drop A
    for (const to of [watching, polling]) {
      const { message } = await a.messenger.send({ to: to.info().peerId, text: 'hello' })
      await until(async () => await status(message.id) === 'delivered', 'hello delivered directly')
      await to.node.libp2p.unhandle(DM_PROTOCOL)
      await to.node.libp2p.hangUp(peerIdFromString(aId))
    }
    await until(async () => {
      const holders = await a.mailbox.closestPeers(watching.info().peerId, 3).catch(() => [])
      const watched = new Set(watching.mailbox.watching())
      return holders.length === 3 && holders.every(h => watched.has(h))
    }, 'the watching recipient watches its mailboxes')

    const rounds = async (to, count, label) => {
      const times = []
      for (let i = 0; i < count; i++) {
        log(`${label} ${i + 1}/${count} …`)
        const { message } = await a.messenger.send({ to: to.info().peerId, text: `${label} ${i}`.padEnd(TEXT_BYTES, 'x') })
        let receivedAt
        await until(async () => {
          if (receivedAt == null && await history(to, message.id)) receivedAt = performance.now()
          const s = await status(message.id)
          return s === 'stored' || s === 'delivered'
        }, 'stored at mailboxes')
        const storedAt = performance.now()
        await poll(async () => {
          if (receivedAt == null && await history(to, message.id)) receivedAt = performance.now()
          return receivedAt != null
        }, 'in the history', COLLECT_INTERVAL + WAIT_TIMEOUT)
        times.push(Math.max(0, receivedAt - storedAt))
      }
      return times
    }
    // independent recipients: both run at once, so the run takes about the polls' time
    const [notify, polled] = await Promise.all([rounds(watching, NOTIFY_ROUNDS, 'notify'), rounds(polling, POLL_ROUNDS, 'poll')])
    return { notify, poll: polled, interval: COLLECT_INTERVAL }
  } finally {
    for (const daemon of daemons.reverse()) await daemon.stop().catch(() => {})
    await work.remove()
  }
}

/** The HTTP API of a testnet's daemons, by node name: a restarted node has a new API URL. */
function client (testnet) {
  const node = name => {
    const found = testnet.nodes.find(n => n.name === name)
    if (found == null) throw new Error(`${name} is not up`)
    return found
  }
  const call = async (name, method, path, body) => {
    const { apiUrl, dataDir } = node(name)
    const token = (await readFile(join(dataDir, 'api.token'), 'utf8')).trim()
    const res = await fetch(apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000)
    })
    const text = await res.text()
    if (!res.ok) throw new Error(`${name}: ${method} ${path} answered ${res.status}: ${text}`)
    return JSON.parse(text)
  }
  return {
    call,
    peerId: name => node(name).peerId,
    history: async (name, peer) => (await call(name, 'GET', `/v1/conversations/${peer}/messages?limit=1000`)).messages
  }
}

/** POST /v1/messages one after the other (as a client would, in order); their ids. */
async function sendAll (api, from, to, texts) {
  const ids = []
  for (const text of texts) ids.push((await api.call(from, 'POST', '/v1/messages', { to, text })).message.id)
  return ids
}

async function poll (check, what, timeout = WAIT_TIMEOUT) {
  const deadline = Date.now() + timeout
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, POLL_INTERVAL))
  }
}

function round (value) {
  return Math.round(value * 10) / 10
}
