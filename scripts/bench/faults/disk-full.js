// Faults: a full disk. Two daemons P → D (real processes); the data directory of one of them on
// an 8 MiB tmpfs that a filler file fills (leaving 512 KiB, so the disk fills while messages
// flow) and that is freed again. At the sender, writes are refused with 507 DISK_FULL and the
// client sends those again once health says ok; at the receiver, envelopes it cannot store are
// answered "retry later" and the sender keeps them. Needs root (mount); skipped otherwise.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, open, readFile, rm, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, MB, apiRequest, rssOf, tempDir } from '../lib.js'

const MESSAGES = 3000
const CONCURRENCY = 50
const TMPFS_MB = 8
const LEFT_FREE = 512 * 1024
const DEADLINE = 180_000

export const scenarios = [
  {
    name: 'disk full at the sender',
    description: `${MESSAGES} sends to a peer while the sender's disk (8 MiB tmpfs) fills; 507s sent again after space is freed`,
    run: async ({ log }) => await scenario('sender', log)
  },
  {
    name: 'disk full at the receiver',
    description: `${MESSAGES} messages to a peer whose disk (8 MiB tmpfs) fills while they arrive; then space is freed`,
    run: async ({ log }) => await scenario('receiver', log)
  }
]

async function scenario (full, log) {
  if (process.getuid?.() !== 0) return { accepted: 0, delivered: 0, lost: 0, note: 'skipped: mounting a tmpfs needs root' }
  const undo = []
  try {
    const disk = await mountTmpfs(undo)
    const other = await tempDir('octet-bench-disk-')
    undo.push(other.remove)
    const p = await startDaemon(full === 'sender' ? join(disk, 'data') : other.dir, [], undo)
    const d = await startDaemon(full === 'receiver' ? join(disk, 'data') : other.dir, [p.address], undo)
    const onDisk = full === 'sender' ? p : d

    // the fault-free part, the baseline: the same number of messages with room on the disk
    const t0 = performance.now()
    const baseline = await sendAll(p, d, MESSAGES, 'baseline')
    await allDelivered(p, baseline.accepted)
    const baselineMs = performance.now() - t0
    const rssBefore = rssOf(onDisk.child.pid)

    log(`  ${full}: filling the disk`)
    const filler = await fillDisk(disk, LEFT_FREE)
    const first = await sendAll(p, d, MESSAGES, 'fault')
    await waitFor(async () => (await health(onDisk)).status === 'degraded', 'health degraded')
    const rssDegraded = rssOf(onDisk.child.pid)

    log(`  ${full}: freeing the disk`)
    const freedAt = performance.now()
    await rm(filler)
    await waitFor(async () => (await health(onDisk)).status === 'ok', 'health ok')
    const healthyMs = performance.now() - freedAt
    // what the sender refused with 507 the client sends again, as a client should
    const again = first.refused > 0 ? await sendAll(p, d, first.refused, 'again') : { accepted: [], refused: 0 }
    const accepted = [...first.accepted, ...again.accepted]
    const delivered = await allDelivered(p, accepted)
    const recoverMs = performance.now() - freedAt
    const atD = await conversation(d, p.peerId)
    const copies = new Map()
    for (const m of atD) copies.set(m.id, (copies.get(m.id) ?? 0) + 1)
    const twice = [...copies.values()].filter(n => n > 1).length
    const missing = accepted.filter(id => !copies.has(id)).length
    const counters = (await api(onDisk, 'GET', '/v1/stats')).body.counters
    return {
      accepted: accepted.length,
      delivered,
      lost: missing,
      rssGrowthMB: (Math.max(rssDegraded, rssOf(onDisk.child.pid)) - rssBefore) / MB,
      recoverMs,
      note: `507 answers ${first.refused}; health ok ${Math.round(healthyMs)} ms after freeing, all delivered after ${Math.round(recoverMs)} ms; ` +
        `delivered twice ${twice}; deferred envelopes (retry later) ${counters['dm.deferred.DISK_FULL'] ?? 0}; ` +
        `baseline: ${MESSAGES} sent and delivered in ${Math.round(baselineMs)} ms with room on the disk`
    }
  } finally {
    for (const step of undo.reverse()) await step().catch(() => {})
  }
}

async function mountTmpfs (undo) {
  const dir = await mkdtemp(join(tmpdir(), 'octet-bench-tmpfs-'))
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MB}m`, 'tmpfs', dir], { encoding: 'utf8' })
  if (mounted.status !== 0) throw new Error(`mount tmpfs: ${mounted.stderr}`)
  undo.push(async () => {
    spawnSync('umount', [dir])
    await rm(dir, { recursive: true, force: true })
  })
  return dir
}

/** A real file until ENOSPC, then `leave` bytes of it given back. */
async function fillDisk (dir, leave) {
  const path = join(dir, 'filler')
  const file = await open(path, 'w')
  const chunk = Buffer.alloc(64 * 1024, 0xa5)
  let size = 0
  try {
    while (true) size += (await file.write(chunk)).bytesWritten
  } catch (err) {
    if (err.code !== 'ENOSPC') throw err
  } finally {
    await file.close()
  }
  await truncate(path, Math.max(0, size - leave))
  return path
}

async function startDaemon (dataDir, bootstrap, undo) {
  const args = [CLI, 'daemon', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--log-level', 'warn',
    ...bootstrap.flatMap(b => ['--bootstrap', b])]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] })
  undo.push(async () => {
    if (child.exitCode != null || child.signalCode != null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  })
  const ready = await new Promise((resolve, reject) => {
    child.on('message', m => { if (m.type === 'ready') resolve(m) })
    child.once('exit', code => reject(new Error(`daemon exited with ${code}`)))
  })
  const token = (await readFile(join(dataDir, 'api.token'), 'utf8')).trim()
  return { child, token, url: ready.apiUrl, peerId: ready.peerId, address: ready.addresses.find(a => a.includes('/tcp/')) }
}

async function api (daemon, method, path, body) {
  return await apiRequest(daemon.url, daemon.token, method, path, body)
}

async function health (daemon) {
  return (await api(daemon, 'GET', '/v1/health')).body
}

/** `count` sends, CONCURRENCY at a time: the ids answered 202, and how many were refused (507). */
async function sendAll (p, d, count, label) {
  const accepted = []
  let refused = 0
  for (let i = 0; i < count; i += CONCURRENCY) {
    const answers = await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count - i) }, async (_, j) =>
      await api(p, 'POST', '/v1/messages', { to: d.peerId, text: `${label} ${i + j + 1}` })))
    for (const { status, body } of answers) {
      if (status === 202) accepted.push(body.message.id)
      else if (status === 507) refused++
      else throw new Error(`send answered ${status}: ${JSON.stringify(body)}`)
    }
  }
  return { accepted, refused }
}

/** Waits until every id is delivered at the sender (or the deadline); returns how many are. */
async function allDelivered (p, ids) {
  const peer = (await api(p, 'GET', `/v1/messages/${ids[0]}`)).body.message.peer
  const deadline = Date.now() + DEADLINE
  while (true) {
    const statuses = new Map((await conversation(p, peer)).map(m => [m.id, m.status]))
    const delivered = ids.filter(id => statuses.get(id) === 'delivered').length
    if (delivered === ids.length || Date.now() > deadline) return delivered
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

/** A whole conversation, newest page first, then back page by page. */
async function conversation (node, peer) {
  const all = []
  let before
  while (true) {
    const page = (await api(node, 'GET', `/v1/conversations/${peer}/messages?limit=1000${before != null ? `&before=${before}` : ''}`)).body.messages
    if (page.length === 0) return all
    all.unshift(...page)
    before = page[0].id
  }
}

async function waitFor (check, what) {
  const deadline = Date.now() + DEADLINE
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}
