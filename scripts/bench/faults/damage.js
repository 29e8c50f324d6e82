// Faults: damaged state (issue #11). One daemon accepts MESSAGES texts to a peer that never comes
// (each one is on disk when the API answers 202), stops, and copies of its data directory are
// damaged one way each. Per scenario: was the start refused (exit 65), how long that took, what
// `octet doctor --repair` recovered and how long it ran, and how many messages the daemon then
// serves through its API (delivered). lost is loss nobody named: accepted − delivered − what
// doctor reported as lost; it must be 0. The baseline is an undamaged copy's start.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { cp, mkdir, readdir, readFile, rm, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { CLI, apiRequest, tempDir } from '../lib.js'

const MESSAGES = 2000
const EXIT_STATE_DAMAGED = 65
// a peer that is never online: the messages stay queued, as accepted
const PEER = '12D3KooWGzh6sZ2Dqk5JkxH6N9sDiP3RWs8rVEh5bmh5vUL3S1gX'

function daemonArgs (dir) {
  return [CLI, 'daemon', '--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--log-level', 'warn']
}

/** A daemon process: resolves when ready (with its API) or when it exits first (with its code and stderr). */
async function startDaemon (dir) {
  const startedAt = performance.now()
  const child = spawn(process.execPath, daemonArgs(dir), { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr.on('data', chunk => { stderr += chunk })
  return await new Promise(resolve => {
    child.on('message', async message => {
      if (message?.type !== 'ready') return
      const token = (await readFile(join(dir, 'api.token'), 'utf8')).trim()
      resolve({ child, ms: performance.now() - startedAt, api: apiOf(message.apiUrl, token) })
    })
    child.once('exit', code => { resolve({ exitCode: code, ms: performance.now() - startedAt, stderr: stderr.trim() }) })
  })
}

async function stopDaemon (child, signal = 'SIGTERM') {
  const exited = once(child, 'exit')
  child.kill(signal)
  await exited
}

function apiOf (url, token) {
  return async (method, path, body) => await apiRequest(url, token, method, path, body)
}

async function runCli (args) {
  const startedAt = performance.now()
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', chunk => { stdout += chunk })
  child.stderr.on('data', chunk => { stderr += chunk })
  const [code] = await once(child, 'close')
  return { code, stdout, stderr, ms: performance.now() - startedAt }
}

async function send (api, count, label) {
  const inFlight = 16
  let next = 0
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < count) {
      const i = next++
      const { status } = await api('POST', '/v1/messages', { to: PEER, text: `${label} ${i}` })
      if (status !== 202) throw new Error(`send answered ${status}`)
    }
  }))
}

/** Every message of the conversation the daemon serves, paged back from the newest. */
async function readable (api) {
  const ids = new Set()
  let before
  for (;;) {
    const { body } = await api('GET', `/v1/conversations/${PEER}/messages?limit=1000${before != null ? `&before=${before}` : ''}`)
    for (const m of body.messages) ids.add(m.id)
    if (body.messages.length < 1000) return ids.size
    before = body.messages[0].id
  }
}

/** A data directory that accepted MESSAGES texts: `inLog` after one session, `inTables` after a second (LevelDB made tables of its log). */
async function prepare (root) {
  const dir = join(root, 'golden')
  const first = await startDaemon(dir)
  if (first.child == null) throw new Error(`daemon did not start: ${first.stderr}`)
  await send(first.api, MESSAGES, 'message')
  await stopDaemon(first.child)
  const inLog = join(root, 'in-log')
  await cp(dir, inLog, { recursive: true })
  const second = await startDaemon(dir)
  const baselineMs = second.ms
  await stopDaemon(second.child)
  return { inLog, inTables: dir, baselineMs }
}

async function largest (dir, test) {
  const stateDir = join(dir, 'db', 'state')
  const sized = await Promise.all((await readdir(stateDir)).filter(test).map(async name => ({ path: join(stateDir, name), size: (await stat(join(stateDir, name))).size })))
  return sized.sort((a, b) => b.size - a.size)[0].path
}

const damages = [
  { name: 'CURRENT deleted', source: 'inTables', damage: async dir => { await rm(join(dir, 'db', 'state', 'CURRENT')) } },
  { name: 'MANIFEST deleted', source: 'inTables', damage: async dir => { await rm(await largest(dir, n => n.startsWith('MANIFEST-'))) } },
  { name: 'largest .ldb table deleted', source: 'inTables', damage: async dir => { await rm(await largest(dir, n => n.endsWith('.ldb'))) } },
  { name: 'largest .ldb table truncated to half', source: 'inTables', damage: async dir => { const p = await largest(dir, n => n.endsWith('.ldb')); await truncate(p, Math.floor((await stat(p)).size / 2)) } },
  { name: 'write-ahead log truncated to 60 %', source: 'inLog', damage: async dir => { const p = await largest(dir, n => n.endsWith('.log')); await truncate(p, Math.floor((await stat(p)).size * 0.6)) } },
  { name: 'db/state emptied', source: 'inTables', damage: async dir => { await rm(join(dir, 'db', 'state'), { recursive: true }); await mkdir(join(dir, 'db', 'state')) } },
  {
    name: 'identity.key deleted',
    source: 'inTables',
    damage: async dir => { await rm(join(dir, 'identity.key')) },
    // doctor cannot make a key: the way out is the identity.key from a backup
    wayOut: async (dir, golden) => { await cp(join(golden, 'identity.key'), join(dir, 'identity.key')) }
  }
]

async function damageScenario (spec, prepared) {
  const golden = prepared[spec.source]
  const { dir, remove } = await tempDir('octet-bench-damage-')
  try {
    await cp(golden, dir, { recursive: true })
    await spec.damage(dir)
    const refused = await startDaemon(dir)
    if (refused.child != null) {
      await stopDaemon(refused.child)
      return { accepted: MESSAGES, delivered: 0, lost: MESSAGES, note: 'NOT DETECTED: the daemon started' }
    }
    const detected = refused.exitCode === EXIT_STATE_DAMAGED
    let named = 0
    let repairMs
    let repairNote
    if (spec.wayOut != null) {
      const tried = await runCli(['doctor', '--repair', '--data-dir', dir])
      repairNote = `doctor --repair refused (exit ${tried.code}); identity.key restored from the original`
      await spec.wayOut(dir, golden)
    } else {
      const repair = await runCli(['doctor', '--repair', '--json', '--data-dir', dir])
      if (repair.code !== 0) throw new Error(`doctor --repair failed: ${repair.stderr}`)
      const report = JSON.parse(repair.stdout)
      named = report.lost.messages ?? 0
      repairMs = repair.ms
      repairNote = `doctor --repair in ${Math.round(repair.ms)} ms named ${named} messages lost (marker ${report.marker?.counts.messages ?? '-'}, before ${report.before?.messages ?? 'unreadable'}, after ${report.after.messages ?? 0})`
    }
    const started = await startDaemon(dir)
    if (started.child == null) throw new Error(`daemon did not start after the repair: ${started.stderr}`)
    const delivered = await readable(started.api)
    await stopDaemon(started.child)
    return {
      accepted: MESSAGES,
      delivered,
      lost: MESSAGES - delivered - named,
      recoverMs: repairMs,
      note: `${detected ? 'refused' : `exit ${refused.exitCode}, not 65`} in ${Math.round(refused.ms)} ms (an undamaged start: ready in ${Math.round(prepared.baselineMs)} ms): "${refused.stderr.slice(0, 160)}…"; ${repairNote}`
    }
  } finally {
    await remove()
  }
}

/** Not damage: a daemon SIGKILLed right after 200 more accepted texts starts again, nothing lost, nothing refused. */
async function crashScenario (prepared) {
  const { dir, remove } = await tempDir('octet-bench-damage-')
  try {
    await cp(prepared.inTables, dir, { recursive: true })
    const running = await startDaemon(dir)
    await send(running.api, 200, 'before the kill')
    await stopDaemon(running.child, 'SIGKILL')
    const again = await startDaemon(dir)
    if (again.child == null) return { accepted: MESSAGES + 200, delivered: 0, lost: MESSAGES + 200, note: `REFUSED after a crash: ${again.stderr}` }
    const delivered = await readable(again.api)
    await stopDaemon(again.child)
    const doctor = await runCli(['doctor', '--data-dir', dir])
    return { accepted: MESSAGES + 200, delivered, lost: MESSAGES + 200 - delivered, recoverMs: again.ms, note: `started again in ${Math.round(again.ms)} ms (undamaged start ${Math.round(prepared.baselineMs)} ms); doctor exit ${doctor.code}` }
  } finally {
    await remove()
  }
}

let prepared
async function shared () {
  if (prepared == null) {
    const { dir } = await tempDir('octet-bench-damage-golden-')
    prepared = { root: dir, ...await prepare(dir) }
  }
  return prepared
}

export const scenarios = [
  ...damages.map(spec => ({
    name: `damage: ${spec.name}`,
    description: `${MESSAGES} texts accepted, then ${spec.name}: refused at start, doctor --repair, messages readable after`,
    run: async () => await damageScenario(spec, await shared())
  })),
  {
    name: 'damage: SIGKILL (not damage)',
    description: `${MESSAGES} texts, then 200 more and SIGKILL: must start again with all of them`,
    run: async () => {
      try {
        return await crashScenario(await shared())
      } finally {
        await rm(prepared.root, { recursive: true, force: true })
        prepared = undefined
      }
    }
  }
]
