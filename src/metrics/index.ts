import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { Metrics } from '@libp2p/interface'
import type { Counters, OctetEvent } from '../messaging/index.js'
import { SECOND } from '../units.js'
import { DirectorySizes } from './disk.js'
import { RegistryMetrics } from './libp2p.js'

export { RegistryMetrics } from './libp2p.js'

/** The on-disk size of the databases is walked at most this often (a scrape in between gets the last figure). */
export const DB_SIZE_INTERVAL = 30 * SECOND
/** Resolution of the event-loop delay histogram (prom-client's default metrics, nodejs_eventloop_lag_*). */
const EVENT_LOOP_RESOLUTION_MS = 10

export interface SseClientStats {
  clients: number
  /** events the furthest-behind client has not been sent yet */
  maxLagEvents: number
  /** bytes written to clients and not yet taken by them, summed */
  bufferedBytes: number
}

/**
 * Where the figures come from: the daemon's parts, each read through its public methods at
 * scrape time. Nothing here counts what the parts count already (`counters` is the same
 * object /v1/stats shows).
 */
export interface MetricsSources {
  counters: Counters
  /** which counters are refusals of peers' input (src/refusals.ts) */
  isRefusal: (counter: string) => boolean
  /** the committed event log: message statuses as SSE clients see them */
  subscribe: (listener: (event: OctetEvent) => void) => () => void
  outbox: () => Promise<{ peers: number, entries: number }>
  mailbox: () => { envelopes: number, bytes: number, recipients: number }
  groups: () => Promise<Array<{ state: string, members: string[] }>>
  /** events of incoming messages waiting for an earlier message of their sender (src/messaging/ordering.ts) */
  heldEvents: () => { direct: number, group: number }
  sse: () => SseClientStats
  /** each webhook's state and the events it has not acknowledged yet */
  webhooks: () => Array<{ id: string, state: string, lag: number }>
  peers: () => number
  relay: () => { relayAddresses: number, reservations: number, circuits: number, refusedCircuits: number }
  /** database name → directory */
  databases: Record<string, string>
}

/**
 * Node's default metrics (CPU, memory, GC, event-loop delay) are the process's, whatever runs in
 * it: collected once per process, in a registry of their own that every daemon's scrape
 * includes. prom-client's collectors cannot be stopped (an event-loop delay monitor, a GC
 * observer), so one per daemon would pile up in a process that starts and stops many.
 */
let processRegistry: Registry | undefined
function processMetrics (): Registry {
  if (processRegistry == null) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: EVENT_LOOP_RESOLUTION_MS })
  }
  return processRegistry
}

/**
 * One daemon's metrics, on a Registry of its own (tests and benchmarks run several daemons in
 * one process): libp2p's (through `libp2p()`, the `metrics` option of createLibp2p) and
 * octet's, read from `sources` once the daemon's parts exist (`watch`); scraped together with
 * the process's.
 */
export class OctetMetrics {
  readonly registry = new Registry()
  private sources: MetricsSources | undefined
  private unsubscribe: (() => void) | undefined
  private readonly messages: Counter<'kind' | 'status'>

  constructor (labels: { version: string }) {
    const registers = [this.registry]
    new Gauge({ name: 'octet_info', help: 'always 1; the labels say which octet runs', labelNames: ['version'], registers }).set(labels, 1)
    this.messages = new Counter({ name: 'octet_messages_total', help: 'messages by the status they reached, from the event log: direct (queued, sent, stored, delivered, read, failed, received) and group (received)', labelNames: ['kind', 'status'], registers })

    const from = <T>(read: (s: MetricsSources) => T | Promise<T>) => async (): Promise<T | undefined> => this.sources == null ? undefined : await read(this.sources)
    const counters = (refusals: boolean) => async function (this: Counter<'counter'>) {
      // the running totals /v1/stats shows: set, not added, at every scrape
      const values = await from(s => Object.entries(s.counters.snapshot()).filter(([name]) => s.isRefusal(name) === refusals))()
      this.reset()
      for (const [name, value] of values ?? []) this.inc({ counter: name }, value)
    }
    new Counter({ name: 'octet_counter_total', help: 'the counters of GET /v1/stats (delivered, retried, deposited, …) that are not refusals, by name', labelNames: ['counter'], registers, collect: counters(false) })
    new Counter({ name: 'octet_refusals_total', help: 'input from peers refused, by /v1/stats counter (protocol and reason: dm.rejected.FORGED_SENDER, …)', labelNames: ['counter'], registers, collect: counters(true) })

    const gauge = (name: string, help: string, read: () => Promise<number | undefined>): void => {
      new Gauge({ name, help, registers, async collect () { const value = await read(); if (value != null) this.set(value) } })
    }
    gauge('octet_outbox_entries', 'envelopes in the outbox waiting for their peer to take them', from(async s => (await s.outbox()).entries))
    gauge('octet_outbox_peers', 'peers with something in the outbox', from(async s => (await s.outbox()).peers))
    gauge('octet_mailbox_envelopes', 'sealed envelopes this node holds for offline peers', from(s => s.mailbox().envelopes))
    gauge('octet_mailbox_bytes', 'bytes those envelopes take', from(s => s.mailbox().bytes))
    gauge('octet_mailbox_recipients', 'offline peers this node holds envelopes for', from(s => s.mailbox().recipients))
    gauge('octet_group_members', 'members of the groups this node is in, summed over the groups', from(async s => (await s.groups()).filter(g => g.state === 'joined').reduce((sum, g) => sum + g.members.length, 0)))
    new Gauge({
      name: 'octet_groups',
      help: 'groups known, by state (invited, joined, left, …)',
      labelNames: ['state'],
      registers,
      collect: async function () {
        const groups = await from(s => s.groups())()
        this.reset()
        for (const g of groups ?? []) this.inc({ state: g.state })
      }
    })
    new Gauge({
      name: 'octet_events_held',
      help: 'events of incoming messages held back until an earlier message of their sender arrives (or the hold ends), by kind (direct, group)',
      labelNames: ['kind'],
      registers,
      collect: async function () {
        const held = await from(s => s.heldEvents())()
        if (held == null) return
        this.set({ kind: 'direct' }, held.direct)
        this.set({ kind: 'group' }, held.group)
      }
    })
    gauge('octet_sse_clients', 'event stream (SSE) clients connected', from(s => s.sse().clients))
    gauge('octet_sse_lag_events', 'events the furthest-behind SSE client has not been sent yet', from(s => s.sse().maxLagEvents))
    gauge('octet_sse_buffered_bytes', 'bytes written to SSE clients that they have not taken yet', from(s => s.sse().bufferedBytes))
    new Gauge({
      name: 'octet_webhooks',
      help: 'webhooks, by state (active, paused)',
      labelNames: ['state'],
      registers,
      collect: async function () {
        const webhooks = await from(s => s.webhooks())()
        this.reset()
        // both states always, so a paused count of 0 is a sample, not an absent series
        this.set({ state: 'active' }, 0)
        this.set({ state: 'paused' }, 0)
        for (const w of webhooks ?? []) this.inc({ state: w.state })
      }
    })
    new Gauge({
      name: 'octet_webhook_lag_events',
      help: 'events in the log a webhook has not had acknowledged yet, by webhook id',
      labelNames: ['webhook'],
      registers,
      collect: async function () {
        const webhooks = await from(s => s.webhooks())()
        this.reset()
        for (const w of webhooks ?? []) this.set({ webhook: w.id }, w.lag)
      }
    })
    gauge('octet_peers', 'distinct peers with an open connection', from(s => s.peers()))
    gauge('octet_relay_addresses', '/p2p-circuit addresses of this node: relays holding a reservation for it', from(s => s.relay().relayAddresses))
    gauge('octet_relay_service_reservations', 'peers holding a reservation on this node as a relay', from(s => s.relay().reservations))
    gauge('octet_relay_service_circuits', 'relayed connections open through this node', from(s => s.relay().circuits))
    new Counter({
      name: 'octet_relay_service_refused_circuits_total',
      help: 'relayed connections this node refused as a relay (over its limits)',
      registers,
      collect: async function () {
        const refused = await from(s => s.relay().refusedCircuits)()
        this.reset()
        this.inc(refused ?? 0)
      }
    })

    const sizes = new DirectorySizes(DB_SIZE_INTERVAL)
    new Gauge({
      name: 'octet_db_bytes',
      help: `on-disk size of each database directory (walked at most every ${DB_SIZE_INTERVAL / SECOND} s)`,
      labelNames: ['db'],
      registers,
      collect: async function () {
        const databases = await from(s => s.databases)()
        for (const [db, bytes] of Object.entries(await sizes.read(databases ?? {}))) this.set({ db }, bytes)
      }
    })
  }

  /** libp2p's metrics on this registry: the `metrics` option of createLibp2p. */
  libp2p (): () => Metrics {
    return () => new RegistryMetrics(this.registry)
  }

  /** Starts reading octet's figures from the daemon's parts. */
  watch (sources: MetricsSources): void {
    this.sources = sources
    this.unsubscribe?.()
    this.unsubscribe = sources.subscribe(event => { this.onEvent(event) })
  }

  stop (): void {
    this.unsubscribe?.()
    this.unsubscribe = undefined
  }

  /** The Prometheus text exposition of every metric of this daemon. */
  async scrape (): Promise<{ contentType: string, text: string }> {
    const [ofProcess, ofDaemon] = await Promise.all([processMetrics().metrics(), this.registry.metrics()])
    return { contentType: this.registry.contentType, text: `${ofProcess}\n${ofDaemon}` }
  }

  private onEvent (event: OctetEvent): void {
    if (event.type === 'message.status' && typeof event.data.status === 'string') {
      this.messages.inc({ kind: 'direct', status: event.data.status })
    } else if (event.type === 'message.received') {
      this.messages.inc({ kind: 'direct', status: 'received' })
    } else if (event.type === 'group.message') {
      this.messages.inc({ kind: 'group', status: 'received' })
    }
  }
}
