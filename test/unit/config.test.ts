import { mkdir, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  CONFIG_FILE_NAME,
  DEFAULT_API_PORT,
  DEFAULT_LISTEN,
  loadDaemonConfig,
  parseApiAddress,
  readConfigFile,
  resolveDataDir,
  type RawSettings
} from '../../src/config.js'
import { OctetError, type ErrorCode } from '../../src/errors.js'
import { DELIVERY_TIMEOUT, PAUSE_AFTER_FAILURES, RETRY_MAX_DELAY, RETRY_MIN_DELAY } from '../../src/webhooks/constants.js'
import { Cleanup } from '../helpers/daemon.js'

const cleanup = new Cleanup()
afterEach(async () => { await cleanup.run() })

let dataDir: string
beforeEach(async () => { dataDir = await cleanup.tempDir('octet-config-') })

let peerA: string
let peerB: string
beforeAll(async () => {
  peerA = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  peerB = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
})

async function writeConfig (content: unknown): Promise<void> {
  await writeFile(join(dataDir, CONFIG_FILE_NAME), typeof content === 'string' ? content : JSON.stringify(content))
}

/** Runs `fn` and returns the OctetError code it throws (fails the test when it throws anything else). */
function codeOf (fn: () => unknown): ErrorCode | undefined {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(OctetError)
    return (err as OctetError).code
  }
  return undefined
}

/** A plain view of a config for comparisons: multiaddrs as strings. */
function plain (flags: RawSettings, env: NodeJS.ProcessEnv = {}): Record<string, unknown> {
  const config = loadDaemonConfig({ dataDir, ...flags }, env)
  return {
    dataDir: config.dataDir,
    listen: config.listen.map(a => a.toString()),
    api: config.api,
    bootstrap: config.bootstrap.map(a => a.toString()),
    mdns: config.mdns,
    logLevel: config.logLevel
  }
}

describe('loadDaemonConfig', () => {
  it('uses the documented defaults when nothing is set', () => {
    expect(plain({})).toEqual({
      dataDir,
      listen: DEFAULT_LISTEN,
      api: { host: '127.0.0.1', port: DEFAULT_API_PORT },
      bootstrap: [],
      mdns: true,
      logLevel: 'info'
    })
  })

  it('defaults the data directory to ~/.octet, or OCTET_DATA_DIR', () => {
    expect(resolveDataDir(undefined, {})).toBe(join(homedir(), '.octet'))
    expect(resolveDataDir(undefined, { OCTET_DATA_DIR: dataDir })).toBe(dataDir)
    expect(resolveDataDir(join(dataDir, 'flag'), { OCTET_DATA_DIR: dataDir })).toBe(join(dataDir, 'flag'))
    // an empty variable counts as unset
    expect(resolveDataDir(undefined, { OCTET_DATA_DIR: '  ' })).toBe(join(homedir(), '.octet'))
    // the config file is read from the data directory the environment names
    expect(loadDaemonConfig({}, { OCTET_DATA_DIR: dataDir }).dataDir).toBe(dataDir)
  })

  // flags > environment > config file > defaults, one setting at a time
  const file = {
    listen: ['/ip4/127.0.0.1/tcp/1001'],
    api: '127.0.0.1:1002',
    mdns: false,
    logLevel: 'warn'
  }
  const env = {
    OCTET_LISTEN: '/ip4/127.0.0.1/tcp/2001',
    OCTET_API: '127.0.0.1:2002',
    OCTET_MDNS: 'true',
    OCTET_LOG_LEVEL: 'debug'
  }
  const flags: RawSettings = {
    listen: ['/ip4/127.0.0.1/tcp/3001'],
    api: '127.0.0.1:3002',
    mdns: false,
    logLevel: 'error'
  }
  const precedence: Array<{ name: string, file?: object, env?: NodeJS.ProcessEnv, flags?: RawSettings, expected: Record<string, unknown> }> = [
    {
      name: 'config file over defaults',
      file,
      expected: { listen: ['/ip4/127.0.0.1/tcp/1001'], api: { host: '127.0.0.1', port: 1002 }, mdns: false, logLevel: 'warn' }
    },
    {
      name: 'environment over config file',
      file,
      env,
      expected: { listen: ['/ip4/127.0.0.1/tcp/2001'], api: { host: '127.0.0.1', port: 2002 }, mdns: true, logLevel: 'debug' }
    },
    {
      name: 'flags over environment and config file',
      file,
      env,
      flags,
      expected: { listen: ['/ip4/127.0.0.1/tcp/3001'], api: { host: '127.0.0.1', port: 3002 }, mdns: false, logLevel: 'error' }
    },
    {
      name: 'each setting from its own source',
      file: { logLevel: 'warn', mdns: false },
      env: { OCTET_API: '127.0.0.1:2002', OCTET_LOG_LEVEL: '' },
      flags: { listen: ['/ip4/127.0.0.1/tcp/3001'] },
      expected: { listen: ['/ip4/127.0.0.1/tcp/3001'], api: { host: '127.0.0.1', port: 2002 }, mdns: false, logLevel: 'warn' }
    },
    {
      name: 'environment alone, comma-separated lists with spaces and empty items',
      env: { OCTET_LISTEN: '/ip4/127.0.0.1/tcp/2001, /ip4/127.0.0.1/tcp/2003/ws,', OCTET_MDNS: 'off' },
      expected: { listen: ['/ip4/127.0.0.1/tcp/2001', '/ip4/127.0.0.1/tcp/2003/ws'], api: { host: '127.0.0.1', port: DEFAULT_API_PORT }, mdns: false, logLevel: 'info' }
    },
    {
      name: 'config file lists may be comma-separated strings, booleans strings',
      file: { listen: '/ip4/127.0.0.1/tcp/1001,/ip4/127.0.0.1/tcp/1003', mdns: 'no' },
      expected: { listen: ['/ip4/127.0.0.1/tcp/1001', '/ip4/127.0.0.1/tcp/1003'], api: { host: '127.0.0.1', port: DEFAULT_API_PORT }, mdns: false, logLevel: 'info' }
    }
  ]

  it.each(precedence)('$name', async (c) => {
    if (c.file != null) await writeConfig(c.file)
    const { dataDir: _ignored, bootstrap, ...rest } = plain(c.flags ?? {}, c.env ?? {})
    expect(bootstrap).toEqual([])
    expect(rest).toEqual(c.expected)
  })

  it('takes bootstrap lists from flags > env > file, env comma-separated', async () => {
    const a = `/ip4/127.0.0.1/tcp/4001/p2p/${peerA}`
    const b = `/ip4/127.0.0.1/tcp/4002/p2p/${peerB}`
    await writeConfig({ bootstrap: [a] })
    expect(plain({}).bootstrap).toEqual([a])
    expect(plain({}, { OCTET_BOOTSTRAP: `${a},${b}` }).bootstrap).toEqual([a, b])
    expect(plain({ bootstrap: [b] }, { OCTET_BOOTSTRAP: a }).bootstrap).toEqual([b])
  })

  it('takes the libp2p components to log from flags > env > file, none by default', async () => {
    expect(loadDaemonConfig({ dataDir }, {}).libp2pLog).toEqual([])
    await writeConfig({ libp2pLog: ['yamux'] })
    expect(loadDaemonConfig({ dataDir }, {}).libp2pLog).toEqual(['yamux'])
    expect(loadDaemonConfig({ dataDir }, { OCTET_LIBP2P_LOG: 'kad-dht, -tcp:connection ,' }).libp2pLog).toEqual(['kad-dht', '-tcp:connection'])
    expect(loadDaemonConfig({ dataDir, libp2pLog: '*' }, { OCTET_LIBP2P_LOG: 'kad-dht' }).libp2pLog).toEqual(['*'])
  })

  it('takes the metrics address from flags > env > file, and has none by default', async () => {
    const metrics = (flags: RawSettings, env: NodeJS.ProcessEnv = {}): unknown => loadDaemonConfig({ dataDir, ...flags }, env).metrics
    expect(metrics({})).toBeUndefined()
    await writeConfig({ metrics: '127.0.0.1:3003' })
    expect(metrics({})).toEqual({ host: '127.0.0.1', port: 3003 })
    expect(metrics({}, { OCTET_METRICS: '[::1]:2003' })).toEqual({ host: '::1', port: 2003 })
    expect(metrics({ metrics: '0.0.0.0:0' }, { OCTET_METRICS: '[::1]:2003' })).toEqual({ host: '0.0.0.0', port: 0 })
  })

  it('takes webhook delivery timing from env > file, with the defaults of src/webhooks/constants.ts', async () => {
    const webhooks = (env: NodeJS.ProcessEnv = {}): unknown => loadDaemonConfig({ dataDir }, env).webhooks
    expect(webhooks()).toEqual({ timeout: DELIVERY_TIMEOUT, retryMin: RETRY_MIN_DELAY, retryMax: RETRY_MAX_DELAY, pauseAfter: PAUSE_AFTER_FAILURES })
    await writeConfig({ webhookRetryMinMs: 100, webhookRetryMaxMs: 800, webhookPauseAfter: 6 })
    expect(webhooks({ OCTET_WEBHOOK_TIMEOUT_MS: '2000', OCTET_WEBHOOK_PAUSE_AFTER: '3' })).toEqual({ timeout: 2000, retryMin: 100, retryMax: 800, pauseAfter: 3 })
    expect(codeOf(() => webhooks({ OCTET_WEBHOOK_RETRY_MAX_MS: '50' }))).toBe('INVALID_CONFIG')
    expect(codeOf(() => webhooks({ OCTET_WEBHOOK_PAUSE_AFTER: '0' }))).toBe('INVALID_CONFIG')
  })

  it('takes the event stream heartbeat interval from env > file, within 100 ms to 60 s; unset leaves the API default', async () => {
    const heartbeat = (env: NodeJS.ProcessEnv = {}): unknown => loadDaemonConfig({ dataDir }, env).sseHeartbeatMs
    expect(heartbeat()).toBeUndefined()
    await writeConfig({ sseHeartbeatMs: 5000 })
    expect(heartbeat()).toBe(5000)
    expect(heartbeat({ OCTET_SSE_HEARTBEAT_MS: '300' })).toBe(300)
    for (const bad of ['99', '60001', 'fast', '1.5']) expect(codeOf(() => heartbeat({ OCTET_SSE_HEARTBEAT_MS: bad }))).toBe('INVALID_CONFIG')
    expect(() => heartbeat({ OCTET_SSE_HEARTBEAT_MS: '50' })).toThrow(/event stream heartbeat interval \(ms\) must be a whole number from 100 to 60000, not "50"/)
  })

  it('says which address is wrong: metrics, not api', () => {
    expect(() => plain({ metrics: 'nonsense' })).toThrow(/invalid metrics address "nonsense": expected host:port/)
  })

  it('accepts booleans written in the usual ways', () => {
    for (const yes of ['true', '1', 'yes', 'on', 'TRUE', ' On ']) expect(plain({}, { OCTET_MDNS: yes }).mdns).toBe(true)
    for (const no of ['false', '0', 'no', 'off', 'False']) expect(plain({}, { OCTET_MDNS: no }).mdns).toBe(false)
  })

  const bad: Array<{ name: string, flags?: RawSettings, env?: NodeJS.ProcessEnv, file?: unknown, code: ErrorCode }> = [
    { name: 'listen: not a multiaddr', flags: { listen: ['not-a-multiaddr'] }, code: 'INVALID_MULTIADDR' },
    { name: 'listen: bad IPv4 address', flags: { listen: ['/ip4/999.1.1.1/tcp/1'] }, code: 'INVALID_MULTIADDR' },
    { name: 'listen: port not a number', env: { OCTET_LISTEN: '/ip4/127.0.0.1/tcp/notaport' }, code: 'INVALID_MULTIADDR' },
    { name: 'listen: unknown protocol, from the file', file: { listen: ['/foo/bar'] }, code: 'INVALID_MULTIADDR' },
    { name: 'listen: one bad item in an env list', env: { OCTET_LISTEN: '/ip4/127.0.0.1/tcp/1,ip4/127.0.0.1/tcp/2' }, code: 'INVALID_MULTIADDR' },
    { name: 'listen: empty list', flags: { listen: [] }, code: 'INVALID_CONFIG' },
    { name: 'listen: not a list', file: { listen: 5 }, code: 'INVALID_CONFIG' },
    { name: 'bootstrap: not a multiaddr', flags: { bootstrap: ['garbage'] }, code: 'INVALID_MULTIADDR' },
    { name: 'bootstrap: unparseable multiaddr', env: { OCTET_BOOTSTRAP: '/ip4/127.0.0.1/tcp/x' }, code: 'INVALID_MULTIADDR' },
    { name: 'bootstrap: no /p2p/ part', flags: { bootstrap: ['/ip4/127.0.0.1/tcp/4001'] }, code: 'INVALID_MULTIADDR' },
    { name: 'bootstrap: /p2p/ part that is not a PeerId', flags: { bootstrap: ['/ip4/127.0.0.1/tcp/4001/p2p/notapeerid'] }, code: 'INVALID_MULTIADDR' },
    { name: 'api: no port', flags: { api: 'localhost' }, code: 'INVALID_ADDRESS' },
    { name: 'api: port 70000', env: { OCTET_API: '127.0.0.1:70000' }, code: 'INVALID_ADDRESS' },
    { name: 'api: port not a number', file: { api: '127.0.0.1:http' }, code: 'INVALID_ADDRESS' },
    { name: 'api: not a string', file: { api: 4780 }, code: 'INVALID_ADDRESS' },
    { name: 'metrics: no port', flags: { metrics: 'localhost' }, code: 'INVALID_ADDRESS' },
    { name: 'metrics: port 70000', env: { OCTET_METRICS: '127.0.0.1:70000' }, code: 'INVALID_ADDRESS' },
    { name: 'metrics: a URL', flags: { metrics: 'http://127.0.0.1:4781' }, code: 'INVALID_ADDRESS' },
    { name: 'metrics: not a string', file: { metrics: 4781 }, code: 'INVALID_ADDRESS' },
    { name: 'log level: unknown', flags: { logLevel: 'verbose' }, code: 'INVALID_CONFIG' },
    { name: 'log level: wrong case', env: { OCTET_LOG_LEVEL: 'INFO' }, code: 'INVALID_CONFIG' },
    { name: 'mdns: not a boolean', env: { OCTET_MDNS: 'maybe' }, code: 'INVALID_CONFIG' },
    { name: 'mdns: a number in the file', file: { mdns: 1 }, code: 'INVALID_CONFIG' },
    { name: 'config file: not JSON', file: '{ listen: [', code: 'INVALID_CONFIG' },
    { name: 'config file: an array', file: '["/ip4/127.0.0.1/tcp/1"]', code: 'INVALID_CONFIG' },
    { name: 'config file: null', file: 'null', code: 'INVALID_CONFIG' },
    { name: 'config file: a string', file: '"listen"', code: 'INVALID_CONFIG' },
    { name: 'config file: unknown key (a typo)', file: { listn: ['/ip4/127.0.0.1/tcp/1'] }, code: 'INVALID_CONFIG' },
    { name: 'config file: sets dataDir', file: { dataDir: '/elsewhere' }, code: 'INVALID_CONFIG' },
    { name: 'data dir flag: empty string', flags: { dataDir: ' ' }, code: 'INVALID_CONFIG' },
    { name: 'reachability: unknown mode', flags: { reachability: 'nat' }, code: 'INVALID_CONFIG' },
    { name: 'reachability: not a string in the file', file: { reachability: true }, code: 'INVALID_CONFIG' },
    { name: 'relay service: not a boolean', env: { OCTET_RELAY_SERVICE: 'sometimes' }, code: 'INVALID_CONFIG' },
    { name: 'relay max reservations: negative', flags: { relayMaxReservations: '-1' }, code: 'INVALID_CONFIG' },
    { name: 'relay max circuits: not a number', env: { OCTET_RELAY_MAX_CIRCUITS: 'many' }, code: 'INVALID_CONFIG' },
    { name: 'relay max circuits per peer: a fraction', file: { relayMaxCircuitsPerPeer: 2.5 }, code: 'INVALID_CONFIG' },
    { name: 'relay circuit duration: zero seconds', flags: { relayCircuitDuration: '0' }, code: 'INVALID_CONFIG' },
    { name: 'relay circuit bytes: below 1 KiB', env: { OCTET_RELAY_CIRCUIT_BYTES: '100' }, code: 'INVALID_CONFIG' },
    { name: 'upnp: not a boolean', file: { upnp: 'please' }, code: 'INVALID_CONFIG' },
    { name: 'api allowed host: a URL, not a host', env: { OCTET_API_ALLOWED_HOSTS: 'http://octet.example' }, code: 'INVALID_CONFIG' },
    { name: 'api allowed host: with a port', flags: { apiAllowedHosts: ['octet.example:4780'] }, code: 'INVALID_CONFIG' },
    { name: 'api allowed hosts: not a list of strings', file: { apiAllowedHosts: [1] }, code: 'INVALID_CONFIG' }
  ]

  it('takes the API allowed hosts from flags, environment and file, in that order, lower case', async () => {
    await writeConfig({ apiAllowedHosts: ['file.example'] })
    const load = (flags: RawSettings, env: NodeJS.ProcessEnv = {}): string[] => loadDaemonConfig({ dataDir, ...flags }, env).apiAllowedHosts
    expect(load({})).toEqual(['file.example'])
    expect(load({}, { OCTET_API_ALLOWED_HOSTS: 'Bridge.Example, 192.0.2.7,[2001:db8::1]' })).toEqual(['bridge.example', '192.0.2.7', '2001:db8::1'])
    expect(load({ apiAllowedHosts: ['flag.example'] }, { OCTET_API_ALLOWED_HOSTS: 'env.example' })).toEqual(['flag.example'])
  })

  it('takes reachability and relay limits from flags, environment and file, in that order', async () => {
    await writeConfig({ reachability: 'private', relayMaxCircuits: 10 })
    const load = (flags: RawSettings, env: NodeJS.ProcessEnv = {}): ReturnType<typeof loadDaemonConfig> => loadDaemonConfig({ dataDir, ...flags }, env)
    expect(load({}).reachability).toBe('private')
    expect(load({ reachability: 'public' }, { OCTET_REACHABILITY: 'auto' }).reachability).toBe('public')
    expect(load({}, { OCTET_RELAY_MAX_CIRCUITS: '20', OCTET_RELAY_CIRCUIT_DURATION: '60', OCTET_RELAY_SERVICE: 'false' })).toMatchObject({
      relayService: false,
      relayLimits: { maxCircuits: 20, circuitDurationMs: 60_000, maxReservations: 64, maxCircuitsPerPeer: 8, circuitBytes: 4 * 1024 * 1024 }
    })
    expect(load({}).relayLimits.maxCircuits).toBe(10)
  })

  it.each(bad)('refuses $name with $code', async (c) => {
    if (c.file !== undefined) await writeConfig(c.file)
    expect(codeOf(() => loadDaemonConfig({ dataDir, ...c.flags }, c.env ?? {}))).toBe(c.code)
  })

  it('a bad value from a lower source does not matter when a higher one overrides it', async () => {
    await writeConfig({ api: 'nonsense', logLevel: 'loud' })
    expect(plain({ api: '127.0.0.1:0' }, { OCTET_LOG_LEVEL: 'warn' })).toMatchObject({ api: { host: '127.0.0.1', port: 0 }, logLevel: 'warn' })
  })
})

describe('readConfigFile', () => {
  it('returns nothing when the file or the directory does not exist', () => {
    expect(readConfigFile(dataDir)).toEqual({})
    expect(readConfigFile(join(dataDir, 'missing'))).toEqual({})
  })

  it('returns the keys the file sets, as they are', async () => {
    await writeConfig({ listen: ['/ip4/127.0.0.1/tcp/1'], mdns: false })
    expect(readConfigFile(dataDir)).toEqual({ listen: ['/ip4/127.0.0.1/tcp/1'], mdns: false })
  })

  it('refuses a config.json it cannot read (a directory) with INVALID_CONFIG', async () => {
    await mkdir(join(dataDir, CONFIG_FILE_NAME))
    expect(codeOf(() => readConfigFile(dataDir))).toBe('INVALID_CONFIG')
  })
})

describe('parseApiAddress', () => {
  const good: Array<[string, { host: string, port: number }]> = [
    ['127.0.0.1:4780', { host: '127.0.0.1', port: 4780 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['0.0.0.0:65535', { host: '0.0.0.0', port: 65535 }],
    ['localhost:8080', { host: 'localhost', port: 8080 }],
    ['[::1]:4780', { host: '::1', port: 4780 }],
    [' 127.0.0.1:4780 ', { host: '127.0.0.1', port: 4780 }]
  ]
  it.each(good)('parses %j', (text, expected) => {
    expect(parseApiAddress(text)).toEqual(expected)
  })

  const badAddresses: unknown[] = ['127.0.0.1:70000', '127.0.0.1:65536', 'localhost', '127.0.0.1:', ':4780', '::1:4780', '127.0.0.1:-1', 'host:port', '127.0.0.1:123456', '', 4780, null, ['127.0.0.1:1']]
  it.each(badAddresses)('refuses %j with INVALID_ADDRESS', (value) => {
    expect(codeOf(() => parseApiAddress(value))).toBe('INVALID_ADDRESS')
  })
})
