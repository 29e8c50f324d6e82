import { inspect } from 'node:util'
import type { ComponentLogger, Logger as Libp2pLog } from '@libp2p/interface'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import type { Logger } from '../logger.js'
import { REFUSAL_LOG_INTERVAL } from '../refusals.js'

/**
 * libp2p's own logs, through the daemon's pino logger: a child with
 * `module: 'libp2p'` and the libp2p component's name (`libp2p:kad-dht`,
 * `libp2p:yamux` …) as `component`.
 *
 * libp2p logs a great deal, and most of what it calls an error is the
 * everyday weather of a peer-to-peer network (a dial that failed, a peer that
 * closed a stream, a DHT walk before any peer is known): in a 12-node
 * benchmark its errors were hundreds of lines a minute, none of them news to
 * an operator. What is news octet reports itself (an address in use, no
 * bootstrap peer answering, a refusal). So its `log.error` lines go at pino's
 * `debug` (`--log-level debug` shows them); the debug lines (`log(...)`) of the components named in
 * `enable` (the daemon's `--libp2p-log`, OCTET_LIBP2P_LOG, e.g.
 * `kad-dht,yamux`) are forwarded at `debug`, and shown whatever the daemon's
 * log level; a component excluded there (`-tcp:connection`) is silent, its
 * errors too. See `libp2pLogEnabled` for the patterns.
 *
 * A peer can make libp2p log an error at will (a stream opened for a protocol
 * we do not speak, then reset, is one each), so errors are logged as
 * refusals are (src/refusals.ts): per libp2p message, the first of an
 * interval in full, the rest as one line with their count when it ends.
 */
export function pinoComponentLogger (log: Logger, enable: readonly string[] = [], interval = REFUSAL_LOG_INTERVAL): ComponentLogger {
  const patterns = compile(enable)
  const errors = new ErrorWindows(interval)
  const wantsDebug = patterns.some(p => !p.exclude)
  const wantsTrace = patterns.some(p => !p.exclude && p.trace)
  const base = log.child({ module: 'libp2p' }, wantsDebug ? { level: lowest(log.level, wantsTrace ? 'trace' : 'debug') } : {})
  const forComponent = (name: string): Libp2pLog => {
    let child: Logger | undefined
    const emit = (kind: 'error' | 'debug' | 'trace', formatter: unknown, args: unknown[]): void => {
      const level = kind === 'trace' ? 'trace' : 'debug'
      if (!base.isLevelEnabled(level)) return
      child ??= base.child({ component: name })
      if (kind !== 'error') {
        child[level](formatLibp2pMessage(formatter, args))
        return
      }
      const logger = child
      // libp2p's format strings are literals in its source: a bounded set of keys
      if (errors.first(typeof formatter === 'string' ? formatter : '', repeats => { logger.debug({ repeats }, `${formatLibp2pMessage(formatter, args)}: ${repeats} more like it in ${interval / 1000} s, not logged one by one`) })) {
        child.debug(formatLibp2pMessage(formatter, args))
      }
    }
    const debugOn = matches(patterns, name, false)
    const traceOn = matches(patterns, name, true)
    const errorsOn = !excluded(patterns, name)
    const component = (formatter: unknown, ...args: unknown[]): void => { if (debugOn) emit('debug', formatter, args) }
    component.error = (formatter: unknown, ...args: unknown[]): void => { if (errorsOn) emit('error', formatter, args) }
    component.trace = (formatter: unknown, ...args: unknown[]): void => { if (traceOn) emit('trace', formatter, args) }
    component.enabled = debugOn
    component.newScope = (scope: string): Libp2pLog => forComponent(`${name}:${scope}`)
    return component
  }
  return { forComponent }
}

/** Per key, whether this one opens an interval (log it) or repeats within one (count it; `summary` gets the count when the interval ends). */
class ErrorWindows {
  private readonly open = new Map<string, { repeats: number, summary: (repeats: number) => void }>()

  constructor (private readonly interval: number) {}

  first (key: string, summary: (repeats: number) => void): boolean {
    const window = this.open.get(key)
    if (window != null) {
      window.repeats++
      window.summary = summary
      return false
    }
    this.open.set(key, { repeats: 0, summary })
    setTimeout(() => {
      const ended = this.open.get(key)
      this.open.delete(key)
      if (ended != null && ended.repeats > 0) ended.summary(ended.repeats)
    }, this.interval).unref()
    return true
  }
}

/**
 * Whether `enable` turns on the debug lines of a libp2p component, as libp2p's
 * DEBUG variable does: comma-separated names, with or without the `libp2p:`
 * prefix; a name covers its sub-scopes (`kad-dht` covers
 * `libp2p:kad-dht:routing-table`); `*` matches anything; `-name` excludes;
 * `name:trace` adds the trace lines of those components.
 */
export function libp2pLogEnabled (enable: readonly string[], component: string, trace = false): boolean {
  return matches(compile(enable), component, trace)
}

interface Pattern {
  regex: RegExp
  exclude: boolean
  trace: boolean
}

function compile (enable: readonly string[]): Pattern[] {
  return enable.map(token => token.trim()).filter(token => token !== '' && token !== '-').map(token => {
    const exclude = token.startsWith('-')
    let name = exclude ? token.slice(1) : token
    const trace = name.endsWith(':trace')
    if (trace) name = name.slice(0, -':trace'.length)
    name = name.replace(/^libp2p:/, '')
    const glob = name.split('*').map(part => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')
    return { regex: new RegExp(`^(libp2p:)?${glob}(:.*)?$`), exclude, trace }
  })
}

function excluded (patterns: Pattern[], component: string): boolean {
  return patterns.some(p => p.exclude && p.regex.test(component))
}

function matches (patterns: Pattern[], component: string, trace: boolean): boolean {
  let on = false
  for (const p of patterns) {
    if (!p.regex.test(component)) continue
    if (p.exclude) return false
    if (!trace || p.trace) on = true
  }
  return on
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

function lowest (level: string, wanted: 'debug' | 'trace'): string {
  const current = LEVELS.indexOf(level)
  return current >= 0 && current < LEVELS.indexOf(wanted) ? level : wanted
}

/**
 * libp2p's debug-style format strings: %s %d %i %f %j %o %O as in Node, and
 * libp2p's own %p (PeerId) %a (multiaddr) %c (CID) %k (datastore key)
 * %b (base58btc) %t (base32) %m (base64) %e (an error: its message, and those
 * of an AggregateError's errors). Arguments left over are appended.
 */
export function formatLibp2pMessage (formatter: unknown, args: unknown[]): string {
  if (formatter instanceof Error) return [errorText(formatter), ...args.map(show)].join(' ')
  if (typeof formatter !== 'string') return [formatter, ...args].map(show).join(' ')
  let next = 0
  const text = formatter.replace(/%([a-zA-Z%])/g, (whole, spec: string) => {
    if (spec === '%') return '%'
    if (!(spec in FORMATS) || next >= args.length) return whole
    return FORMATS[spec]?.(args[next++]) ?? whole
  })
  return [text, ...args.slice(next).map(show)].join(' ')
}

const text = (v: unknown): string => v == null ? 'undefined' : String(v)
const bytes = (encoding: 'base58btc' | 'base32' | 'base64') => (v: unknown): string => v instanceof Uint8Array ? uint8ArrayToString(v, encoding) : text(v)

const FORMATS: Record<string, (v: unknown) => string> = {
  s: text,
  d: v => String(Number(v)),
  i: v => String(Math.trunc(Number(v))),
  f: v => String(Number(v)),
  j: v => { try { return JSON.stringify(v) } catch { return '[unserialisable]' } },
  o: show,
  O: show,
  p: text,
  a: text,
  c: text,
  k: text,
  b: bytes('base58btc'),
  t: bytes('base32'),
  m: bytes('base64'),
  e: v => v instanceof Error ? errorText(v) : text(v)
}

function show (v: unknown): string {
  if (typeof v === 'string') return v
  if (v instanceof Error) return errorText(v)
  return inspect(v, { depth: 2, breakLength: Infinity })
}

function errorText (err: Error): string {
  const inner = err instanceof AggregateError ? err.errors.filter((e): e is Error => e instanceof Error) : []
  const own = err.message === '' ? err.name : `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`
  return inner.length === 0 ? own : `${own} (${inner.map(errorText).join('; ')})`
}
