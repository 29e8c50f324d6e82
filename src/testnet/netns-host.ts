import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, readlinkSync, statSync } from 'node:fs'
import { OctetError, errorMessage, systemErrorCode } from '../errors.js'
import { SECOND } from '../units.js'

/**
 * What the network-namespace topology needs from the machine, how it runs `ip` and
 * `iptables`, and how it finds what a run left behind. Only namespaces named with
 * NETNS_PREFIX and a process id are ever touched.
 */

/** Every namespace octet creates is named `oct-<pid>-<n>-…`: the pid of the process that made it. */
export const NETNS_PREFIX = 'oct'
const OWNED_NAME = new RegExp(`^${NETNS_PREFIX}-(\\d+)-\\d+-`)
/** Where `ip netns add` keeps the names (a bind mount of each namespace). */
const NETNS_RUN_DIR = '/run/netns'
/** One `ip` or `iptables-restore` run takes a few milliseconds; this is for a wedged one. */
export const COMMAND_TIMEOUT = 10 * SECOND

const INSTALL_HINT = 'install them with `apt-get install -y iproute2 iptables` (Debian/Ubuntu)'

export interface CommandResult { code: number | null, stdout: string, stderr: string }

/** Runs a command to its end (its stdin fed from `input`); rejects only when it cannot be started or is aborted. */
export async function runCommand (command: string, args: string[], options: { input?: string, signal?: AbortSignal, timeoutMs?: number } = {}): Promise<CommandResult> {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? COMMAND_TIMEOUT)
  const signal = options.signal == null ? timeout : AbortSignal.any([options.signal, timeout])
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    child.once('error', err => {
      if (systemErrorCode(err) === 'ENOENT') reject(missingTool(command))
      else if (signal.aborted) reject(new OctetError('NETNS_FAILED', `${command} ${args.join(' ')}: ${timeout.aborted ? `no answer within ${(options.timeoutMs ?? COMMAND_TIMEOUT) / SECOND} s` : 'aborted'}`, { cause: err }))
      else reject(new OctetError('NETNS_FAILED', `${command} ${args.join(' ')}: ${errorMessage(err)}`, { cause: err }))
    })
    child.once('close', code => { resolve({ code, stdout, stderr }) })
    // a command that does not read its stdin may close it before we write: not an error
    child.stdin.on('error', () => {})
    child.stdin.end(options.input ?? '')
  })
}

/** runCommand that must succeed: a non-zero exit becomes NETNS_FAILED with the command's own words. */
export async function mustRun (command: string, args: string[], options: { input?: string, signal?: AbortSignal } = {}): Promise<string> {
  const result = await runCommand(command, args, options)
  if (result.code !== 0) {
    const what = options.input != null ? `${command} ${args.join(' ')} (input: ${options.input.trim().split('\n').join('; ')})` : `${command} ${args.join(' ')}`
    throw new OctetError('NETNS_FAILED', `${what} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`)
  }
  return result.stdout
}

function missingTool (command: string): OctetError {
  return new OctetError('NETNS_UNSUPPORTED', `\`${command}\` was not found on PATH: the NAT topology needs iproute2 (ip) and iptables; ${INSTALL_HINT}`)
}

/**
 * Why network namespaces cannot be built here, in one line, or undefined when they can:
 * Linux, root (creating namespaces and NAT rules needs CAP_NET_ADMIN and CAP_SYS_ADMIN),
 * `ip` and `iptables` on PATH, and a namespace that can really be created.
 */
export function netnsUnavailableReason (): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root (run as root, e.g. with sudo)'
  for (const [tool, args] of [['ip', ['-V']], ['iptables', ['-V']], ['iptables-restore', ['--version']]] as const) {
    const probe = spawnSync(tool, args, { stdio: 'ignore', timeout: COMMAND_TIMEOUT })
    if (probe.error != null) return `\`${tool}\` is missing: ${INSTALL_HINT}`
  }
  const name = `${NETNS_PREFIX}-${process.pid}-0-probe`
  const added = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8', timeout: COMMAND_TIMEOUT })
  spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: COMMAND_TIMEOUT })
  if (added.status !== 0) return `cannot create a network namespace here: ${added.stderr.trim() || `ip netns add exited ${added.status}`}`
  return undefined
}

/** Throws NETNS_UNSUPPORTED saying what is missing, unless namespaces can be built here. */
export function assertNetnsSupported (): void {
  const reason = netnsUnavailableReason()
  if (reason != null) throw new OctetError('NETNS_UNSUPPORTED', reason)
}

/** The names in /run/netns that octet owns (`oct-<pid>-<n>-…`), with the pid of the process that made each. */
export function ownedNamespaces (): Array<{ name: string, pid: number }> {
  let names: string[]
  try {
    names = readdirSync(NETNS_RUN_DIR)
  } catch {
    return [] // no namespace was ever named on this machine
  }
  return names.flatMap(name => {
    const match = OWNED_NAME.exec(name)
    return match?.[1] != null ? [{ name, pid: Number(match[1]) }] : []
  })
}

/**
 * Processes whose network namespace is one of `names`, found by comparing each process's
 * `/proc/<pid>/ns/net` with the namespace's inode (no spawn: this also runs in an exit hook).
 */
export function pidsInNamespaces (names: string[]): number[] {
  const inodes = new Set<string>()
  for (const name of names) {
    try {
      inodes.add(`net:[${statSync(`${NETNS_RUN_DIR}/${name}`).ino}]`)
    } catch {} // already gone
  }
  if (inodes.size === 0) return []
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (inodes.has(readlinkSync(`/proc/${entry}/ns/net`))) pids.push(Number(entry))
    } catch {} // exited meanwhile, or a kernel thread
  }
  return pids
}

export function isProcessAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return systemErrorCode(err) === 'EPERM'
  }
}

/** Sends `signal` to each pid, ignoring ones that are gone. */
export function signalAll (pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal)
    } catch {} // exited meanwhile
  }
}

/** Deletes namespace names (a missing one is not an error), in one `ip` run. */
export function deleteNamespacesSync (names: string[]): void {
  if (names.length === 0) return
  spawnSync('ip', ['-force', '-batch', '-'], { input: names.map(n => `netns del ${n}\n`).join(''), stdio: ['pipe', 'ignore', 'ignore'], timeout: COMMAND_TIMEOUT })
}

export async function deleteNamespaces (names: string[]): Promise<void> {
  if (names.length === 0) return
  await runCommand('ip', ['-force', '-batch', '-'], { input: names.map(n => `netns del ${n}\n`).join('') })
}

/**
 * Removes the namespaces left by octet processes that no longer exist: a supervisor killed
 * with SIGKILL (or a machine that lost power) runs no clean-up of its own. Processes still
 * inside those namespaces are orphans of that run and are killed first: a namespace whose
 * name is deleted lives on, unseen, for as long as a process holds it. Namespaces of
 * running processes, this one included, are left alone. Returns the names removed.
 */
export async function sweepStaleNamespaces (): Promise<string[]> {
  const stale = ownedNamespaces().filter(ns => ns.pid !== process.pid && !isProcessAlive(ns.pid)).map(ns => ns.name)
  if (stale.length === 0) return []
  signalAll(pidsInNamespaces(stale), 'SIGKILL')
  await deleteNamespaces(stale)
  return stale
}
