import { LevelDatastore } from 'datastore-level'
import { chmod, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { isMainThread } from 'node:worker_threads'
import type { FastifyInstance } from 'fastify'
import { buildApi } from './api/app.js'
import { SseClients } from './api/routes/events.js'
import { buildMetricsApi } from './api/routes/metrics.js'
import { OctetMetrics } from './metrics/index.js'
import { answerClientError } from './api/errors.js'
import { apiHostCheck, isLoopbackHost } from './api/hosts.js'
import type { SseLimits } from './api/routes/events.js'
import { UNIX_SOCKET_PATH_MAX, fitsUnixSocket } from './api-socket.js'
import type { DaemonConfig } from './config.js'
import { DaemonLock, dataDirPaths, loadOrCreateApiToken, prepareDataDir, removeApiUrl, writeApiUrl } from './datadir.js'
import { OctetError, errorMessage, systemErrorCode } from './errors.js'
import type { Logger } from './logger.js'
import { MailboxService, type MailboxServiceOptions } from './mailbox/index.js'
import { Counters, EventLog, Messenger, type MessengerInit } from './messaging/index.js'
import { createNode, type NodeInit, type OctetNode } from './node/index.js'
import { PeerRecordCache } from './node/peer-record-cache.js'
import { SignalCrypto } from './crypto/index.js'
import { GroupService } from './groups/index.js'
import { PrekeyService, prekeySelectors, prekeyValidators, reportingValidators } from './prekeys/index.js'
import { Refusals } from './refusals.js'
import { CommitPipeline } from './store/commit.js'
import { databasePaths } from './store/database.js'
import { CheckedState } from './store/integrity.js'
import { VERSION } from './version.js'
import { WebhookService } from './webhooks/index.js'

export interface DaemonInfo {
  peerId: string
  apiUrl: string
  /** `<data dir>/api.sock`, the same API on a Unix socket; absent when the path is too long for one */
  apiSocket?: string
  /** where GET /metrics is served without the token (--metrics), when it is */
  metricsUrl?: string
  /** announced addresses (see OctetNode.announceAddresses) */
  addresses: string[]
  /** bound listen addresses, dialable before AutoNAT confirms a public one */
  listenAddresses: string[]
  dataDir: string
}

/** How long start waits for a bootstrap peer to enter the DHT routing table. */
const ROUTING_TABLE_WAIT = 5_000

/** Knobs for tests and benchmarks that the CLI does not expose. */
export interface DaemonOverrides {
  /** replaces Noise, e.g. with plaintext to show what the Signal layer alone hides */
  connectionEncrypters?: NodeInit['connectionEncrypters']
  inboundRate?: MessengerInit['inboundRate']
  /** mailbox limits and timers (small TTLs and quotas in tests) */
  mailbox?: MailboxServiceOptions
  /** collecting from our mailboxes: the periodic interval, and whether to watch them for notifies */
  collect?: { interval?: number, notify?: boolean }
  /** how far an event stream client may fall behind (small in tests) */
  sse?: Partial<SseLimits>
}

/** Sent over the IPC channel to a supervising process (the testnet) once the daemon serves. */
export interface ReadyMessage extends DaemonInfo {
  type: 'ready'
}

/**
 * The composition root: config → data directory → store → node → crypto →
 * prekeys → mailbox → messenger → groups → webhooks → API.
 * Start undoes what it did when a later step fails; stop shuts down in the
 * reverse order (stop accepting requests, then the node, then the databases).
 */
export class Daemon {
  private stopping: Promise<void> | undefined
  private readonly cleanups: Array<{ name: string, run: () => Promise<void> }> = []
  node!: OctetNode
  crypto!: SignalCrypto
  prekeys!: PrekeyService
  messenger!: Messenger
  mailbox!: MailboxService
  groups!: GroupService
  webhooks!: WebhookService
  private api!: FastifyInstance
  private apiUrl = ''
  private apiSocket: string | undefined
  private metricsUrl: string | undefined
  /** this daemon's Prometheus registry: libp2p's metrics, the process's, octet's */
  readonly metrics = new OctetMetrics({ version: VERSION })

  private constructor (readonly config: DaemonConfig, private readonly log: Logger, private readonly overrides: DaemonOverrides) {}

  static async start (config: DaemonConfig, log: Logger, overrides: DaemonOverrides = {}): Promise<Daemon> {
    const daemon = new Daemon(config, log, overrides)
    try {
      await daemon.startParts()
    } catch (err) {
      await daemon.runCleanups()
      throw err
    }
    return daemon
  }

  private async startParts (): Promise<void> {
    const { config, log } = this
    await prepareDataDir(config.dataDir, paths => {
      log.warn({ paths }, 'the data directory was open to other users; it is now 0700 and its database files 0600')
    })

    const lock = await DaemonLock.acquire(config.dataDir)
    this.cleanups.push({ name: 'lock', run: async () => { await lock.release() } })

    const warnLoosened = (path: string, mode: number): void => {
      log.warn({ path, mode: mode.toString(8) }, 'secret file was readable by others; its mode is now 0600')
    }
    // identity.key and the state, checked to be whole and to belong together (or refused)
    const state = await CheckedState.open(config.dataDir, { log, onLoosened: warnLoosened })
    const { privateKey, store } = state
    this.cleanups.push({ name: 'store', run: async () => { await state.close() } })
    // every write of octet's state that must keep its order goes through this one pipeline: the
    // Signal state written behind (crypto), the event log and with it the messenger and groups.
    // It closes after all of them stopped, with what they queued written, before the store closes
    const pipeline = new CommitPipeline(store)
    this.cleanups.push({ name: 'commit pipeline', run: async () => { await pipeline.close() } })
    const token = await loadOrCreateApiToken(config.dataDir, { onLoosened: warnLoosened })

    const levelDatastore = new LevelDatastore(databasePaths(config.dataDir).libp2p)
    await levelDatastore.open()
    this.cleanups.push({ name: 'datastore', run: async () => { await levelDatastore.close() } })
    const datastore = new PeerRecordCache(levelDatastore, {
      onFlushError: err => { log.warn({ err }, 'could not write peer records to the datastore; trying again') }
    })
    this.cleanups.push({ name: 'peer records', run: async () => { await datastore.close() } })

    // one set of counters for /v1/stats: the node's (hole punching), the store's and the messenger's
    const counters = new Counters()
    store.onHealthChange(health => {
      if (health.writable) {
        counters.increment('store.resumed')
        log.info('the disk takes writes again: writing resumed')
      } else {
        counters.increment('store.disk-full')
        log.error({ err: health.error.cause }, 'the disk is full: writes are refused (507 DISK_FULL) until space is freed; reads go on')
      }
    })
    // every protocol counts and logs what it refuses from peers through this one
    const refusals = new Refusals(counters, log)
    // flushed once the protocols stopped: what they refused up to the end is in the log
    this.cleanups.push({ name: 'refusals', run: async () => { refusals.flush() } })
    this.node = await createNode({
      privateKey,
      listen: config.listen,
      bootstrap: config.bootstrap,
      mdns: config.mdns,
      datastore,
      dhtValidators: reportingValidators(prekeyValidators, (code, err) => {
        refusals.refuse({ counter: `dht.rejected.${code}`, level: 'info', fields: { code, err: errorMessage(err) }, message: 'refused a DHT record' })
      }),
      dhtSelectors: prekeySelectors,
      connectionEncrypters: this.overrides.connectionEncrypters,
      reachability: config.reachability,
      relayService: config.relayService ? config.relayLimits : undefined,
      upnp: config.upnp,
      webrtc: config.webrtc,
      stunPort: config.stunPort,
      libp2pLog: config.libp2pLog,
      count: name => { counters.increment(name) },
      metrics: this.metrics.libp2p(),
      log
    })
    this.cleanups.push({ name: 'node', run: async () => { await this.node.stop() } })
    if (config.bootstrap.length > 0 && !await this.node.dht.waitForRoutingTable(ROUTING_TABLE_WAIT)) {
      log.warn({ bootstrap: config.bootstrap.map(a => a.toString()) }, 'no bootstrap peer answered yet; lookups fail until one does (the node keeps dialling, see `octet status`)')
    }

    this.crypto = await SignalCrypto.open({
      store,
      pipeline,
      privateKey,
      peerId: this.node.peerId,
      onFlushError: err => {
        counters.increment('signal.flush-failed')
        log.warn({ err }, 'could not write Signal session state; it goes with the next stored message, which is not acknowledged until it is on disk')
      }
    })
    this.prekeys = new PrekeyService({ libp2p: this.node.libp2p, dht: this.node.dht, crypto: this.crypto, log, refusals })
    await this.prekeys.start()
    this.cleanups.push({ name: 'prekeys', run: async () => { await this.prekeys.stop() } })

    this.mailbox = new MailboxService({ libp2p: this.node.libp2p, dht: this.node.dht, store, privateKey, log, refusals, options: { replicas: config.mailboxReplicas, ...this.overrides.mailbox } })
    await this.mailbox.start()
    this.cleanups.push({ name: 'mailbox', run: async () => { await this.mailbox.stop() } })

    const events = await EventLog.open(pipeline)
    this.messenger = new Messenger({
      peerId: this.node.peerId,
      store,
      crypto: this.crypto,
      bundles: this.prekeys,
      libp2p: this.node.libp2p,
      events,
      counters,
      refusals,
      log,
      inboundRate: this.overrides.inboundRate,
      mailbox: { client: this.mailbox, replicas: config.mailboxReplicas, collect: this.overrides.collect }
    })
    this.groups = new GroupService({
      peerId: this.node.peerId,
      privateKey,
      store,
      crypto: this.crypto,
      messenger: this.messenger,
      pubsub: this.node.pubsub,
      libp2p: this.node.libp2p,
      log
    })
    // group envelopes (GROUP_CONTROL, SENDER_KEY) go to the group service; registered before
    // the messenger starts receiving, so none that arrives at once is refused
    this.messenger.setGroupHandler(this.groups.envelopeHandler)
    await this.messenger.start()
    this.cleanups.push({ name: 'messenger', run: async () => { await this.messenger.stop() } })
    await this.groups.start()
    this.cleanups.push({ name: 'groups', run: async () => { await this.groups.stop() } })
    // after the services whose events it pushes, before the API; it stops before the pipeline
    // closes, so the cursor of a POST that finishes during the stop is still written
    this.webhooks = new WebhookService({ pipeline, events, counters, log: log.child({ module: 'webhooks' }), userAgent: `octet/${VERSION}`, options: config.webhooks })
    await this.webhooks.start()
    this.cleanups.push({ name: 'webhooks', run: async () => { await this.webhooks.stop() } })

    const sseClients = new SseClients()
    this.metrics.watch({
      counters,
      isRefusal: name => refusals.isRefusal(name),
      subscribe: listener => events.subscribe(listener),
      outbox: async () => await this.messenger.outboxDepth(),
      mailbox: () => this.mailbox.stats(),
      groups: async () => await this.groups.list(),
      heldEvents: () => ({ direct: this.messenger.heldEvents, group: this.groups.heldEvents }),
      sse: () => sseClients.stats(),
      webhooks: () => this.webhooks.stats(),
      peers: () => this.node.status().peers,
      relay: () => {
        const { relayAddresses, relayService } = this.node.standing()
        return { relayAddresses: relayAddresses.length, reservations: 0, circuits: 0, refusedCircuits: 0, ...relayService }
      },
      databases: databasePaths(config.dataDir)
    })
    this.cleanups.push({ name: 'metrics', run: async () => { this.metrics.stop() } })

    this.api = await buildApi({
      token,
      node: this.node,
      messenger: this.messenger,
      groups: this.groups,
      mailboxStats: () => this.mailbox.stats(),
      storeHealth: () => store.status(),
      log,
      version: VERSION,
      hostCheck: apiHostCheck(config.api.host, config.apiAllowedHosts),
      sse: { ...(config.sseHeartbeatMs != null ? { heartbeatInterval: config.sseHeartbeatMs } : {}), ...this.overrides.sse },
      sseClients,
      metrics: this.metrics,
      webhooks: this.webhooks
    })
    this.cleanups.push({ name: 'api', run: async () => { await this.api.close() } })
    await this.listenApi()
    this.cleanups.push({ name: 'api.url', run: async () => { await removeApiUrl(config.dataDir) } })
    await this.listenApiSocket()
    await this.listenMetrics()
  }

  /** GET /metrics without the token on its own address (--metrics), for a Prometheus server. */
  private async listenMetrics (): Promise<void> {
    const address = this.config.metrics
    if (address == null) return
    const app = await buildMetricsApi({ metrics: this.metrics, hostCheck: apiHostCheck(address.host, this.config.apiAllowedHosts), log: this.log })
    this.cleanups.push({ name: 'metrics listener', run: async () => { await app.close() } })
    this.metricsUrl = await this.listenHttp(app, address, 'metrics', '--metrics')
    if (!isLoopbackHost(address.host)) {
      this.log.warn({ host: address.host }, 'the metrics listen beyond this machine without a token; anyone who can reach them learns how busy this node is and how many peers and groups it has')
    }
  }

  /**
   * The same API on `<data dir>/api.sock`, mode 0600, for clients on this machine that cannot
   * reach the TCP listener (the daemon runs in a network namespace with its own 127.0.0.1) or
   * should not open a port. The bearer token is required there too: the socket's mode is a
   * second fence, not a replacement. A data directory whose socket path is too long for a
   * Unix socket gets no socket and a warning: the daemon is fully usable over TCP, and
   * `octet testnet --nat`, which needs the socket, checks the length before it starts anyone.
   */
  private async listenApiSocket (): Promise<void> {
    const path = dataDirPaths(this.config.dataDir).apiSocket
    if (!fitsUnixSocket(path)) {
      this.log.warn({ path, bytes: Buffer.byteLength(path), max: UNIX_SOCKET_PATH_MAX },
        'data directory path too long for a Unix socket: the API is served over TCP only (no api.sock)')
      return
    }
    // we hold daemon.lock: a socket file here was left by a daemon that died without stopping
    await rm(path, { force: true })
    // as on TCP (src/api/app.ts): Node's own refusals in octet's error shape; no Host check here
    const server = createServer({ requireHostHeader: false }, (req, res) => { this.api.routing(req, res) })
    server.on('clientError', answerClientError)
    // bind() creates the file with mode 0777 & ~umask: a umask of 0177 makes it 0600 from its
    // first instant, so no client of another user can connect in between. umask is process-wide,
    // so it is set only around the synchronous bind (listen() binds before it returns); the
    // chmod afterwards covers a platform where bind is deferred. A worker thread (the group
    // benchmark hosts daemons in two) may not set umask: there the socket relies on the data
    // directory's 0700, which no other user can pass, until the chmod
    const previousUmask = isMainThread ? process.umask(0o177) : undefined
    try {
      server.listen(path)
    } finally {
      if (previousUmask != null) process.umask(previousUmask)
    }
    try {
      await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => { throw err })])
      await chmod(path, 0o600)
    } catch (err) {
      server.close()
      throw new OctetError('INVALID_ADDRESS', `cannot serve the API on ${path}: ${systemErrorCode(err) ?? errorMessage(err)}`, { cause: err })
    }
    this.apiSocket = path
    this.cleanups.push({ name: 'api.sock', run: async () => { await closeSocketServer(server, path) } })
  }

  private async listenApi (): Promise<void> {
    const { host } = this.config.api
    this.apiUrl = await this.listenHttp(this.api, this.config.api, 'API', '--api')
    await writeApiUrl(this.config.dataDir, this.apiUrl)
    if (!isLoopbackHost(host)) {
      this.log.warn({ host }, 'the HTTP API listens beyond this machine; anyone who can reach it and holds the token controls this node')
    }
  }

  /** Listens on `host:port` and says where (port 0 resolved), or one clear error naming `flag`. */
  private async listenHttp (app: FastifyInstance, { host, port }: { host: string, port: number }, what: string, flag: string): Promise<string> {
    try {
      await app.listen({ host, port })
    } catch (err) {
      const code = systemErrorCode(err)
      if (code === 'EADDRINUSE') {
        throw new OctetError('ADDRESS_IN_USE', `${what} address ${host}:${port} is already in use; stop the other process or choose another with ${flag} host:port (port 0 picks a free one)`, { cause: err })
      }
      throw new OctetError('INVALID_ADDRESS', `cannot listen for the ${what} on ${host}:${port}: ${code ?? errorMessage(err)}`, { cause: err })
    }
    const address = app.server.address()
    const boundPort = typeof address === 'object' && address != null ? address.port : port
    const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host
    return `http://${urlHost}:${boundPort}`
  }

  info (): DaemonInfo {
    return {
      peerId: this.node.peerId,
      apiUrl: this.apiUrl,
      ...(this.apiSocket != null ? { apiSocket: this.apiSocket } : {}),
      ...(this.metricsUrl != null ? { metricsUrl: this.metricsUrl } : {}),
      addresses: this.node.announceAddresses(),
      listenAddresses: this.node.listenAddresses(),
      dataDir: this.config.dataDir
    }
  }

  /** Idempotent: a second call waits for the first. */
  async stop (): Promise<void> {
    this.stopping ??= this.runCleanups()
    await this.stopping
  }

  private async runCleanups (): Promise<void> {
    // reverse order of start; a failing step must not keep the rest (the lock above all) held
    for (const { name, run } of this.cleanups.reverse()) {
      try {
        await run()
      } catch (err) {
        this.log.error({ err, step: name }, 'error while shutting down')
      }
    }
    this.cleanups.length = 0
  }
}

/** Stops accepting, ends open requests (event streams never end by themselves), removes the file. */
async function closeSocketServer (server: Server, path: string): Promise<void> {
  const closed = new Promise<void>(resolve => { server.close(() => { resolve() }) })
  server.closeAllConnections()
  await closed
  await rm(path, { force: true })
}
