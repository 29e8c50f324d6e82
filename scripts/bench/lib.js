// Helpers shared by the benchmarks: processes, memory, statistics, machine facts.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '../..')
export const CLI = join(ROOT, 'bin', 'octet.js')
export const MB = 1024 * 1024

/** Resident memory of a process in bytes (VmRSS from /proc/<pid>/status). */
export function rssOf (pid) {
  return memoryOf(pid).rss
}

/**
 * VmRSS and its parts, in bytes: anonymous memory is the process's own (heap, stacks);
 * file-backed pages (the node binary, native addons) are shared by every process that maps them.
 */
export function memoryOf (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = name => {
    const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB$`, 'm').exec(status)
    if (match == null) throw new Error(`no ${name} for pid ${pid}`)
    return Number(match[1]) * 1024
  }
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') }
}

/** CPU time (user + system) a process has used so far, in ms (from /proc/<pid>/stat). */
export function cpuMsOf (pid) {
  // fields after the ")" that closes the command name: utime and stime are the 12th and 13th
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS
}
const CLOCK_TICKS = 100

export function median (values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

export function stats (values) {
  return { min: Math.min(...values), median: median(values), max: Math.max(...values), n: values.length }
}

export async function tempDir (prefix) {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  return { dir, remove: async () => { await rm(dir, { recursive: true, force: true }) } }
}

/** A bare Node process (the same binary the daemons run on) that does nothing: the memory floor. */
export async function bareNode () {
  const child = spawn(process.execPath, ['-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  await new Promise((resolveUp, reject) => {
    child.stdout.on('data', chunk => { out += chunk; if (out.includes('up')) resolveUp() })
    child.once('exit', code => { reject(new Error(`bare node exited with ${code}`)) })
  })
  const rss = rssOf(child.pid)
  child.kill('SIGKILL')
  await once(child, 'exit')
  return rss
}

/**
 * One `octet daemon` on 127.0.0.1 with every port picked by the OS: the time from spawn
 * to its "ready" message over IPC, and its RSS then; with `idleMs`, also the CPU it used
 * over that long afterwards, alone (idleCpuMs). SIGTERM after, waiting for its exit.
 */
export async function singleDaemon (dataDir, nodeFlags = [], { idleMs = 0 } = {}) {
  const startedAt = performance.now()
  const child = spawn(process.execPath, [...nodeFlags, CLI, 'daemon', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc']
  })
  let stderr = ''
  child.stderr.on('data', chunk => { stderr += chunk })
  await new Promise((resolveReady, reject) => {
    child.on('message', message => { if (message?.type === 'ready') resolveReady() })
    child.once('exit', code => { reject(new Error(`daemon exited with ${code} before ready: ${stderr}`)) })
  })
  const readyMs = performance.now() - startedAt
  const { rss } = memoryOf(child.pid)
  const cpuMs = cpuMsOf(child.pid)
  let idleCpuMs
  if (idleMs > 0) {
    await new Promise(resolveIdle => setTimeout(resolveIdle, idleMs))
    idleCpuMs = cpuMsOf(child.pid) - cpuMs
  }
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
  return { readyMs, rss, cpuMs, idleCpuMs }
}

export function machine () {
  const list = cpus()
  return {
    node: process.version,
    cpus: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    memoryMB: Math.round(totalmem() / MB),
    loadavg1: Number(loadavg()[0].toFixed(2)),
    kernel: safeRead('/proc/sys/kernel/osrelease')
  }
}

function safeRead (path) {
  try { return readFileSync(path, 'utf8').trim() } catch { return 'unknown' }
}

export async function packageVersion () {
  return JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).version
}

/**
 * The network-namespace Topology for a benchmark, or the rows it reports when this machine
 * cannot build one (not Linux, not root, no iproute2 or iptables): `{ Topology }` or `{ skipped }`.
 */
export async function netnsTopologyOrSkip (log) {
  const { Topology, netnsUnavailableReason } = await import('../../dist/testnet/netns.js')
  const unavailable = netnsUnavailableReason()
  if (unavailable == null) return { Topology }
  log(`skipped: ${unavailable}`)
  return { skipped: { rows: [{ metric: 'skipped', value: '-', unit: '', note: unavailable }] } }
}

/** One request to a daemon's HTTP API with its token: `{ status, body }` (the parsed JSON, or undefined when empty). */
export async function apiRequest (url, token, method, path, body) {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body != null ? { 'content-type': 'application/json' } : {}) },
    body: body != null ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(30_000)
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

/** The value below which `p` percent of `values` lie (nearest rank). */
export function percentile (values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}

/** A whole daemon in this process on 127.0.0.1, every port picked by the OS, logging nothing. */
export async function inProcessDaemon (dataDir, bootstrap) {
  const [{ loadDaemonConfig }, { Daemon }, { createLogger }] = await Promise.all([
    import('../../dist/config.js'), import('../../dist/daemon.js'), import('../../dist/logger.js')
  ])
  const config = loadDaemonConfig({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', mdns: false, bootstrap, logLevel: 'silent' }, {})
  return await Daemon.start(config, createLogger('silent'))
}
