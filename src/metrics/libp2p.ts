import { serviceCapabilities, type Counter, type CounterGroup, type Histogram, type HistogramGroup, type Metric, type MetricGroup, type Metrics, type MultiaddrConnection, type Stream, type Summary, type SummaryGroup } from '@libp2p/interface'
import { Counter as PromCounter, Gauge, Histogram as PromHistogram, Summary as PromSummary, type Registry } from 'prom-client'

/**
 * libp2p's `Metrics` (the `metrics` option of createLibp2p) on one prom-client Registry of
 * one daemon. Why not `@libp2p/prometheus-metrics` (5.0.24, libp2p 3): it keeps the metrics
 * it made in a map shared by the whole process, by name, and clears it whenever a node is
 * created. With several nodes in one process (the tests, the benchmarks: 20 daemons in
 * `groups`), a node started after another was created finds the other's metric under the
 * same name and "reuses" it: measured with two nodes created, then started, each with its own
 * registry, the second registry lacked 7 of 60 families — `libp2p_connection_manager_connections`,
 * `libp2p_protocol_streams_total`, the TCP listener ones — and its connections were counted
 * nowhere. It also clears prom-client's global registry at every creation. This class is the
 * same mapping onto prom-client (same metric names and labels, so its queries work), with the
 * map per instance.
 */
export class RegistryMetrics implements Metrics {
  readonly [serviceCapabilities] = ['@libp2p/metrics']
  readonly [Symbol.toStringTag] = 'octet/libp2p-metrics'
  private readonly made = new Map<string, unknown>()
  /** bytes per "<protocol or global> sent|received", summed here and read at scrape time */
  private readonly transfer = new Map<string, number>()

  constructor (private readonly registry: Registry) {
    this.registerCounterGroup('libp2p_data_transfer_bytes_total', { label: 'protocol', calculate: () => Object.fromEntries(this.transfer) })
  }

  trackMultiaddrConnection (maConn: MultiaddrConnection): void {
    this.track(maConn, 'global')
  }

  trackProtocolStream (stream: Stream): void {
    if (stream.protocol != null) this.track(stream, stream.protocol)
  }

  /**
   * Counts bytes without adding a `message` listener: a stream hands buffered data out only
   * once it has one, so a listener added here could take frames before the protocol's reader
   * is attached (the same approach as upstream's, for that reason).
   */
  private track (stream: MultiaddrConnection | Stream, name: string): void {
    const add = (key: string, bytes: number): void => { this.transfer.set(key, (this.transfer.get(key) ?? 0) + bytes) }
    const dispatch = stream.dispatchEvent.bind(stream)
    stream.dispatchEvent = (event: Event) => {
      if (event.type === 'message') add(`${name} received`, (event as Event & { data: { byteLength: number } }).data.byteLength)
      return dispatch(event)
    }
    const send = stream.send.bind(stream)
    stream.send = (data: Parameters<typeof send>[0]) => {
      add(`${name} sent`, data.byteLength)
      return send(data)
    }
  }

  registerMetric (name: string, options: Options = {}): Metric {
    return this.once(name, () => {
      const calculate = options.calculate as Calculate<number> | undefined
      const gauge = new Gauge({ ...this.base(name, options, false), collect: calculate == null ? undefined : async function () { this.set(await calculate()) } })
      return { update: v => { gauge.set(v) }, increment: (v = 1) => { gauge.inc(v) }, decrement: (v = 1) => { gauge.dec(v) }, reset: () => { gauge.reset() }, timer: () => gauge.startTimer() }
    })
  }

  registerMetricGroup (name: string, options: Options = {}): MetricGroup {
    return this.once(name, () => {
      const { label, config } = this.grouped<Gauge>(name, options, (gauge, labels, value) => { gauge.set(labels, value) })
      const gauge = new Gauge(config)
      return {
        update: values => { each(values, (key, v) => { gauge.set({ [label]: key }, v) }) },
        increment: values => { each(values, (key, v) => { gauge.inc({ [label]: key }, v) }) },
        decrement: values => { each(values, (key, v) => { gauge.dec({ [label]: key }, v) }) },
        reset: () => { gauge.reset() },
        timer: key => gauge.startTimer({ [label]: key })
      }
    })
  }

  /** A calculated counter reports the running total it is given (set, not added at every scrape). */
  registerCounter (name: string, options: Options = {}): Counter {
    return this.once(name, () => {
      const calculate = options.calculate as Calculate<number> | undefined
      const counter = new PromCounter({
        ...this.base(name, options, false),
        collect: calculate == null ? undefined : async function () { const value = await calculate(); this.reset(); this.inc(value) }
      })
      return { increment: (v = 1) => { counter.inc(v) }, reset: () => { counter.reset() } }
    })
  }

  registerCounterGroup (name: string, options: Options = {}): CounterGroup {
    return this.once(name, () => {
      const { label, config } = this.grouped<PromCounter>(name, options, (counter, labels, value) => { counter.inc(labels, value) })
      const counter = new PromCounter(config)
      return { increment: values => { each(values, (key, v) => { counter.inc({ [label]: key }, v) }) }, reset: () => { counter.reset() } }
    })
  }

  registerHistogram (name: string, options: Options & { buckets?: number[] } = {}): Histogram {
    return this.once(name, () => {
      const calculate = options.calculate as Calculate<number> | undefined
      const histogram = new PromHistogram({ ...this.base(name, options, false), buckets: options.buckets ?? DEFAULT_BUCKETS, collect: calculate == null ? undefined : async function () { this.observe(await calculate()) } })
      return { observe: v => { histogram.observe(v) }, reset: () => { histogram.reset() }, timer: () => histogram.startTimer() }
    })
  }

  registerHistogramGroup (name: string, options: Options & { buckets?: number[] } = {}): HistogramGroup {
    return this.once(name, () => {
      const { label, config } = this.grouped<PromHistogram>(name, options, (histogram, labels, value) => { histogram.observe(labels, value) }, false)
      const histogram = new PromHistogram({ ...config, buckets: options.buckets ?? DEFAULT_BUCKETS })
      return { observe: values => { each(values, (key, v) => { histogram.observe({ [label]: key }, v) }) }, reset: () => { histogram.reset() }, timer: key => histogram.startTimer({ [label]: key }) }
    })
  }

  registerSummary (name: string, options: Options & SummaryOptions = {}): Summary {
    return this.once(name, () => {
      const calculate = options.calculate as Calculate<number> | undefined
      const summary = new PromSummary({ ...this.base(name, options, false), ...summaryOptions(options), collect: calculate == null ? undefined : async function () { this.observe(await calculate()) } })
      return { observe: v => { summary.observe(v) }, reset: () => { summary.reset() }, timer: () => summary.startTimer() }
    })
  }

  registerSummaryGroup (name: string, options: Options & SummaryOptions = {}): SummaryGroup {
    return this.once(name, () => {
      const { label, config } = this.grouped<PromSummary>(name, options, (summary, labels, value) => { summary.observe(labels, value) }, false)
      const summary = new PromSummary({ ...config, ...summaryOptions(options) })
      return { observe: values => { each(values, (key, v) => { summary.observe({ [label]: key }, v) }) }, reset: () => { summary.reset() }, timer: key => summary.startTimer({ [label]: key }) }
    })
  }

  createTrace (): undefined {
    return undefined
  }

  traceFunction <F> (_name: string, fn: F): F {
    return fn
  }

  /** One metric per name and registry: a second registration gets the first (as upstream, but per node). */
  private once<T> (name: string, make: () => T): T {
    const key = normalize(name)
    let metric = this.made.get(key) as T | undefined
    if (metric == null) {
      metric = make()
      this.made.set(key, metric)
    }
    return metric
  }

  private base (name: string, options: Options, grouped: boolean): { name: string, help: string, labelNames: string[], registers: Registry[] } {
    const labelNames = grouped ? [normalize(options.label ?? name)] : options.label != null ? [normalize(options.label)] : []
    return { name: normalize(name), help: normalize(options.help ?? name), labelNames, registers: [this.registry] }
  }

  /** A group's label (its own name unless given) and its metric's configuration, with `put` for a calculated one. */
  private grouped<M extends { reset: () => void }> (name: string, options: Options, put: (metric: M, labels: Record<string, string>, value: number) => void, reset = true) {
    const label = normalize(options.label ?? name)
    const collect = collectLabelled<M>(options.calculate as Calculate<Record<string, number>> | undefined, label, put, reset)
    return { label, config: { ...this.base(name, options, true), collect } }
  }
}

type Calculate<T> = () => T | Promise<T>

interface Options {
  label?: string
  help?: string
  calculate?: Calculate<number> | Calculate<Record<string, number>>
}

interface SummaryOptions {
  percentiles?: number[]
  maxAgeSeconds?: number
  ageBuckets?: number
  pruneAgedBuckets?: boolean
  compressCount?: number
}

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

function summaryOptions (options: SummaryOptions): SummaryOptions {
  return {
    percentiles: options.percentiles ?? [0.01, 0.05, 0.5, 0.9, 0.95, 0.99, 0.999],
    maxAgeSeconds: options.maxAgeSeconds,
    ageBuckets: options.ageBuckets,
    pruneAgedBuckets: options.pruneAgedBuckets,
    compressCount: options.compressCount ?? 1000
  }
}

/** Metric and label names as Prometheus allows them (`[a-zA-Z0-9_]`), as upstream writes them. */
function normalize (text: string): string {
  return text.replace(/[^a-zA-Z0-9_]/g, '_').replace(/_+/g, '_')
}

/**
 * The collect function of a calculated group: each value `calculate` gives, under its label.
 * A gauge or counter is reset first, so that a key no longer given is no longer shown.
 */
function collectLabelled<M extends { reset: () => void }> (calculate: Calculate<Record<string, number>> | undefined, label: string, put: (metric: M, labels: Record<string, string>, value: number) => void, reset = true): ((this: M) => Promise<void>) | undefined {
  if (calculate == null) return undefined
  return async function (this: M) {
    const values = await calculate()
    if (reset) this.reset()
    for (const [key, value] of Object.entries(values)) put(this, { [label]: key }, value)
  }
}

function each (values: Partial<Record<string, number | true>>, apply: (key: string, value: number) => void): void {
  for (const [key, value] of Object.entries(values)) {
    if (value != null) apply(key, typeof value === 'number' ? value : 1)
  }
}

/** The `metrics` option of createLibp2p, on `registry`. */
export function registryMetrics (registry: Registry): () => Metrics {
  return () => new RegistryMetrics(registry)
}
