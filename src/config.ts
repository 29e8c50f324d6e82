import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { listSetting, nonEmpty, parseBoolean, parseChoice, parseHostList, parseInteger, stringSetting } from './config-values.js'
import { OctetError, errorMessage, systemErrorCode } from './errors.js'
import { DEFAULT_STUN_PORT } from './node/constants.js'
import { HOUR, MINUTE } from './units.js'
import { DELIVERY_TIMEOUT, PAUSE_AFTER_FAILURES, RETRY_MAX_DELAY, RETRY_MIN_DELAY } from './webhooks/constants.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export const DEFAULT_TCP_PORT = 4710
export const DEFAULT_WS_PORT = 4711
export const DEFAULT_API_PORT = 4780
/** RFC 5389's STUN port; peers ask public octet nodes on it (src/node/constants.ts) */
export { DEFAULT_STUN_PORT } from './node/constants.js'
export const DEFAULT_LISTEN = [
  `/ip4/0.0.0.0/tcp/${DEFAULT_TCP_PORT}`,
  `/ip4/0.0.0.0/tcp/${DEFAULT_WS_PORT}/ws`
]
export const DEFAULT_API = `127.0.0.1:${DEFAULT_API_PORT}`
/** the conventional port for a separate metrics listener (`--metrics 127.0.0.1:4781`); off unless asked for */
export const DEFAULT_METRICS_PORT = 4781
export const CONFIG_FILE_NAME = 'config.json'
export const DEFAULT_MAILBOX_REPLICAS = 3
export const MAX_MAILBOX_REPLICAS = 20

export const REACHABILITY_MODES = ['auto', 'public', 'private'] as const
/**
 * How the node learns whether peers can dial it. `auto`: AutoNAT and NAT detection decide;
 * `public` / `private`: the operator says so (a server with a known public address, or a
 * lab network on private address ranges, which AutoNAT by design never tests).
 */
export type ReachabilityMode = typeof REACHABILITY_MODES[number]

/** What this node gives others as a circuit relay, when it offers the service at all. */
export interface RelayLimits {
  /** peers that may hold a reservation (a way in) on this node at once */
  maxReservations: number
  /** relayed connections open through this node at once */
  maxCircuits: number
  /** relayed connections one peer (at either end) may have open through this node at once */
  maxCircuitsPerPeer: number
  /** a relayed connection is closed after this long (ms) */
  circuitDurationMs: number
  /** a relayed connection is closed after this many bytes in either direction */
  circuitBytes: number
}

/**
 * Sized for chat, not file transfer: a sealed 1 KiB message is ~1.5 KiB on the wire, so 4 MiB
 * carries a couple of thousand messages and the background chatter of the protocols (identify,
 * gossipsub heartbeats) for the 30 minutes a circuit may last; a peer that needs more opens a
 * new circuit, or gets a direct connection. 64 reservations and 128 circuits cost a relay at
 * most a few MB of buffers.
 */
export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  maxReservations: 64,
  maxCircuits: 128,
  maxCircuitsPerPeer: 8,
  circuitDurationMs: 30 * 60_000,
  circuitBytes: 4 * 1024 * 1024
}

export interface ApiAddress {
  host: string
  port: number
}

/** The validated configuration a daemon runs with. */
export interface DaemonConfig {
  dataDir: string
  listen: Multiaddr[]
  api: ApiAddress
  /**
   * Host names (or addresses) requests over TCP may give in their Host header, besides loopback
   * names and the address the API listens on (DNS rebinding, src/api/hosts.ts); lower case
   */
  apiAllowedHosts: string[]
  bootstrap: Multiaddr[]
  mdns: boolean
  logLevel: LogLevel
  /** libp2p components whose debug lines are logged (e.g. kad-dht, yamux; src/node/libp2p-logger.ts); none by default, libp2p's errors only */
  libp2pLog: string[]
  /** mailbox peers that keep a sealed copy of a message for an offline recipient */
  mailboxReplicas: number
  reachability: ReachabilityMode
  /** offer circuit relay to peers that cannot be dialled, once this node is found public */
  relayService: boolean
  relayLimits: RelayLimits
  /** ask the home router for a port mapping (UPnP / NAT-PMP) */
  upnp: boolean
  /** direct connections between peers behind NATs: relayed connections upgraded to WebRTC */
  webrtc: boolean
  /** UDP port of the STUN responder a public node runs for peers behind NATs; 0: none */
  stunPort: number
  /** where GET /metrics is also served without the token; undefined: only on the API, with it */
  metrics?: ApiAddress
  /** how webhooks are delivered (src/webhooks/constants.ts says why the defaults) */
  webhooks: WebhookSettings
  /** ms between comments on an idle event stream (announced to clients, which watch for a stall); undefined: the API's default */
  sseHeartbeatMs?: number
}

/** Webhook delivery timing: ms, and failures in a row before a pause. */
export interface WebhookSettings {
  timeout: number
  retryMin: number
  retryMax: number
  pauseAfter: number
}

/**
 * Raw settings before validation, as they come from one source. Lists may be
 * given as arrays or comma-separated strings, booleans as strings.
 */
export interface RawSettings {
  dataDir?: unknown
  listen?: unknown
  api?: unknown
  apiAllowedHosts?: unknown
  bootstrap?: unknown
  mdns?: unknown
  logLevel?: unknown
  libp2pLog?: unknown
  mailboxReplicas?: unknown
  reachability?: unknown
  relayService?: unknown
  relayMaxReservations?: unknown
  relayMaxCircuits?: unknown
  relayMaxCircuitsPerPeer?: unknown
  /** seconds */
  relayCircuitDuration?: unknown
  relayCircuitBytes?: unknown
  upnp?: unknown
  webrtc?: unknown
  stunPort?: unknown
  metrics?: unknown
  /** ms */
  webhookTimeoutMs?: unknown
  /** ms */
  webhookRetryMinMs?: unknown
  /** ms */
  webhookRetryMaxMs?: unknown
  webhookPauseAfter?: unknown
  /** ms */
  sseHeartbeatMs?: unknown
}

const SETTING_KEYS = [
  'dataDir', 'listen', 'api', 'apiAllowedHosts', 'bootstrap', 'mdns', 'logLevel', 'libp2pLog', 'mailboxReplicas',
  'reachability', 'relayService', 'relayMaxReservations', 'relayMaxCircuits', 'relayMaxCircuitsPerPeer',
  'relayCircuitDuration', 'relayCircuitBytes', 'upnp', 'webrtc', 'stunPort', 'metrics',
  'webhookTimeoutMs', 'webhookRetryMinMs', 'webhookRetryMaxMs', 'webhookPauseAfter', 'sseHeartbeatMs'
] as const

/** Environment variable for each setting (DESIGN.md, "Daemon flags"). */
export const ENV_VARS: Record<keyof RawSettings, string> = {
  dataDir: 'OCTET_DATA_DIR',
  listen: 'OCTET_LISTEN',
  api: 'OCTET_API',
  apiAllowedHosts: 'OCTET_API_ALLOWED_HOSTS',
  bootstrap: 'OCTET_BOOTSTRAP',
  mdns: 'OCTET_MDNS',
  logLevel: 'OCTET_LOG_LEVEL',
  libp2pLog: 'OCTET_LIBP2P_LOG',
  mailboxReplicas: 'OCTET_MAILBOX_REPLICAS',
  reachability: 'OCTET_REACHABILITY',
  relayService: 'OCTET_RELAY_SERVICE',
  relayMaxReservations: 'OCTET_RELAY_MAX_RESERVATIONS',
  relayMaxCircuits: 'OCTET_RELAY_MAX_CIRCUITS',
  relayMaxCircuitsPerPeer: 'OCTET_RELAY_MAX_CIRCUITS_PER_PEER',
  relayCircuitDuration: 'OCTET_RELAY_CIRCUIT_DURATION',
  relayCircuitBytes: 'OCTET_RELAY_CIRCUIT_BYTES',
  upnp: 'OCTET_UPNP',
  webrtc: 'OCTET_WEBRTC',
  stunPort: 'OCTET_STUN_PORT',
  metrics: 'OCTET_METRICS',
  webhookTimeoutMs: 'OCTET_WEBHOOK_TIMEOUT_MS',
  webhookRetryMinMs: 'OCTET_WEBHOOK_RETRY_MIN_MS',
  webhookRetryMaxMs: 'OCTET_WEBHOOK_RETRY_MAX_MS',
  webhookPauseAfter: 'OCTET_WEBHOOK_PAUSE_AFTER',
  sseHeartbeatMs: 'OCTET_SSE_HEARTBEAT_MS'
}

export function defaultDataDir (): string {
  return join(homedir(), '.octet')
}

/** The data directory alone, for commands that only need to find a daemon: flag > env > default. */
export function resolveDataDir (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const value = flag ?? nonEmpty(env[ENV_VARS.dataDir]) ?? defaultDataDir()
  return resolve(value)
}

export function settingsFromEnv (env: NodeJS.ProcessEnv): RawSettings {
  const settings: RawSettings = {}
  for (const key of SETTING_KEYS) {
    const value = nonEmpty(env[ENV_VARS[key]])
    if (value != null) settings[key] = value
  }
  return settings
}

/**
 * Reads `<dataDir>/config.json` if it exists. Unknown keys are refused so a
 * typo does not silently fall back to a default.
 */
export function readConfigFile (dataDir: string): RawSettings {
  const path = join(dataDir, CONFIG_FILE_NAME)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = systemErrorCode(err)
    if (code === 'ENOENT' || code === 'ENOTDIR') return {}
    throw new OctetError('INVALID_CONFIG', `cannot read config file ${path}: ${errorMessage(err)}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new OctetError('INVALID_CONFIG', `config file ${path} is not valid JSON (${errorMessage(err)}); fix it or remove it`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new OctetError('INVALID_CONFIG', `config file ${path} must hold a JSON object, e.g. {"listen": ["/ip4/0.0.0.0/tcp/4710"]}`)
  }
  const settings: RawSettings = {}
  for (const [key, value] of Object.entries(parsed)) {
    if (key === 'dataDir') {
      throw new OctetError('INVALID_CONFIG', `config file ${path}: "dataDir" cannot be set inside the data directory; use --data-dir or ${ENV_VARS.dataDir}`)
    }
    if (!(SETTING_KEYS as readonly string[]).includes(key)) {
      throw new OctetError('INVALID_CONFIG', `config file ${path}: unknown key "${key}" (known: ${SETTING_KEYS.filter(k => k !== 'dataDir').join(', ')})`)
    }
    settings[key as keyof RawSettings] = value
  }
  return settings
}

/**
 * The one place where daemon settings are merged and validated:
 * flags > environment > config file > defaults.
 */
export function loadDaemonConfig (flags: RawSettings, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const fromEnv = settingsFromEnv(env)
  const dataDir = resolve(stringSetting('data directory', flags.dataDir ?? fromEnv.dataDir) ?? defaultDataDir())
  const fromFile = readConfigFile(dataDir)
  const pick = (key: keyof RawSettings): unknown => flags[key] ?? fromEnv[key] ?? fromFile[key]

  return {
    dataDir,
    listen: parseMultiaddrList('listen', pick('listen') ?? DEFAULT_LISTEN),
    api: parseApiAddress(pick('api') ?? DEFAULT_API),
    apiAllowedHosts: parseHostList(pick('apiAllowedHosts') ?? []),
    bootstrap: parseBootstrapList(pick('bootstrap') ?? []),
    mdns: parseBoolean('mdns', pick('mdns') ?? true),
    logLevel: parseLogLevel(pick('logLevel') ?? 'info'),
    libp2pLog: listSetting('libp2p log components', pick('libp2pLog') ?? []),
    mailboxReplicas: parseInteger('mailbox replicas', pick('mailboxReplicas') ?? DEFAULT_MAILBOX_REPLICAS, 1, MAX_MAILBOX_REPLICAS),
    reachability: parseChoice('reachability', pick('reachability') ?? 'auto', REACHABILITY_MODES),
    relayService: parseBoolean('relay service', pick('relayService') ?? true),
    relayLimits: {
      maxReservations: parseInteger('relay max reservations', pick('relayMaxReservations') ?? DEFAULT_RELAY_LIMITS.maxReservations, 0, 10_000),
      maxCircuits: parseInteger('relay max circuits', pick('relayMaxCircuits') ?? DEFAULT_RELAY_LIMITS.maxCircuits, 0, 10_000),
      maxCircuitsPerPeer: parseInteger('relay max circuits per peer', pick('relayMaxCircuitsPerPeer') ?? DEFAULT_RELAY_LIMITS.maxCircuitsPerPeer, 0, 10_000),
      circuitDurationMs: 1000 * parseInteger('relay circuit duration (seconds)', pick('relayCircuitDuration') ?? DEFAULT_RELAY_LIMITS.circuitDurationMs / 1000, 1, 7 * 24 * 3600),
      circuitBytes: parseInteger('relay circuit bytes', pick('relayCircuitBytes') ?? DEFAULT_RELAY_LIMITS.circuitBytes, 1024, Number.MAX_SAFE_INTEGER)
    },
    upnp: parseBoolean('upnp', pick('upnp') ?? false),
    // off by default: data channels of a fresh WebRTC connection may stall for seconds
    // (docs/hole-punching.md, "Why off by default")
    webrtc: parseBoolean('webrtc', pick('webrtc') ?? false),
    stunPort: parseInteger('STUN port', pick('stunPort') ?? DEFAULT_STUN_PORT, 0, 65535),
    webhooks: parseWebhookSettings(pick),
    // below 100 ms a stream is mostly comments; above a minute a proxy may time it out, and a
    // client takes minutes to notice a stall
    ...(pick('sseHeartbeatMs') != null ? { sseHeartbeatMs: parseInteger('event stream heartbeat interval (ms)', pick('sseHeartbeatMs'), 100, MINUTE) } : {}),
    ...(pick('metrics') != null ? { metrics: parseListenAddress('metrics', pick('metrics')) } : {})
  }
}

function parseWebhookSettings (pick: (key: keyof RawSettings) => unknown): WebhookSettings {
  const retryMin = parseInteger('webhook first retry wait (ms)', pick('webhookRetryMinMs') ?? RETRY_MIN_DELAY, 1, HOUR)
  const retryMax = parseInteger('webhook longest retry wait (ms)', pick('webhookRetryMaxMs') ?? Math.max(RETRY_MAX_DELAY, retryMin), 1, 24 * HOUR)
  if (retryMax < retryMin) throw new OctetError('INVALID_CONFIG', `webhook longest retry wait (${retryMax} ms) is shorter than the first (${retryMin} ms)`)
  return {
    timeout: parseInteger('webhook timeout (ms)', pick('webhookTimeoutMs') ?? DELIVERY_TIMEOUT, 1, HOUR),
    retryMin,
    retryMax,
    pauseAfter: parseInteger('webhook failures before a pause', pick('webhookPauseAfter') ?? PAUSE_AFTER_FAILURES, 1, 1_000_000)
  }
}

export function parseMultiaddr (name: string, text: string): Multiaddr {
  let addr: Multiaddr
  try {
    addr = multiaddr(text)
  } catch (err) {
    throw new OctetError('INVALID_MULTIADDR', `invalid ${name} address "${text}": ${errorMessage(err)}; expected a multiaddr such as /ip4/127.0.0.1/tcp/${DEFAULT_TCP_PORT}`)
  }
  if (!text.startsWith('/')) {
    throw new OctetError('INVALID_MULTIADDR', `invalid ${name} address "${text}": a multiaddr starts with "/", e.g. /ip4/127.0.0.1/tcp/${DEFAULT_TCP_PORT}`)
  }
  return addr
}

function parseMultiaddrList (name: string, value: unknown): Multiaddr[] {
  const addrs = listSetting(name, value).map(text => parseMultiaddr(name, text))
  if (name === 'listen' && addrs.length === 0) {
    throw new OctetError('INVALID_CONFIG', 'at least one --listen address is needed')
  }
  return addrs
}

function parseBootstrapList (value: unknown): Multiaddr[] {
  return parseMultiaddrList('bootstrap', value).map(addr => {
    // libp2p's bootstrap dials a known peer: without its PeerId the Noise handshake cannot be checked
    const peerIds = addr.getComponents().filter(c => c.name === 'p2p')
    if (peerIds.length === 0) {
      throw new OctetError('INVALID_MULTIADDR', `bootstrap address "${addr.toString()}" has no /p2p/<PeerId> part; copy the full address from \`octet id\` on the bootstrap node`)
    }
    // multiaddr accepts any base58 text after /p2p/; libp2p would fail later with an obscure error
    for (const { value } of peerIds) {
      try {
        peerIdFromString(value ?? '')
      } catch {
        throw new OctetError('INVALID_MULTIADDR', `bootstrap address "${addr.toString()}" has an invalid PeerId "${value ?? ''}"; copy the full address from \`octet id\` on the bootstrap node`)
      }
    }
    return addr
  })
}

export function parseApiAddress (value: unknown): ApiAddress {
  return parseListenAddress('api', value)
}

/** `host:port` (IPv6 in brackets) for an HTTP listener: the API, or the metrics (`name`). */
export function parseListenAddress (name: 'api' | 'metrics', value: unknown): ApiAddress {
  const example = name === 'api' ? `127.0.0.1:${DEFAULT_API_PORT}` : `127.0.0.1:${DEFAULT_METRICS_PORT}`
  if (typeof value !== 'string') {
    throw new OctetError('INVALID_ADDRESS', `${name} address must be a string host:port, e.g. ${example}`)
  }
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value.trim())
  const host = match?.[1] ?? match?.[2]
  const port = Number(match?.[3])
  if (match == null || host == null || !Number.isInteger(port) || port > 65535) {
    throw new OctetError('INVALID_ADDRESS', `invalid ${name} address "${value}": expected host:port with a port from 0 to 65535, e.g. ${example} (port 0 picks a free one)`)
  }
  return { host, port }
}

function parseLogLevel (value: unknown): LogLevel {
  if (typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value)) {
    return value as LogLevel
  }
  throw new OctetError('INVALID_CONFIG', `log level must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(value)}`)
}
