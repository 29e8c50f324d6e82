import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { RegistryMetrics } from '../../src/metrics/index.js'
import { waitFor } from '../helpers/daemon.js'
import { startTestNode } from '../helpers/node.js'
import { total, parseExposition } from '../helpers/prometheus.js'

// Several libp2p nodes in one process, each with its own registry: what each counts stays its
// own. (@libp2p/prometheus-metrics shares its metrics by name across the process: two nodes
// created, then started, left the second without its connection metrics; src/metrics/libp2p.ts.)
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const run of cleanups.splice(0).reverse()) await run() })

async function samples (registry: Registry): Promise<ReturnType<typeof parseExposition>['samples']> {
  return parseExposition(await registry.metrics()).samples
}

describe('RegistryMetrics', () => {
  it('gives each of several nodes started together its own libp2p metrics', async () => {
    const registries = [new Registry(), new Registry(), new Registry()]
    // created and started concurrently: every node registers while the others do
    const [a, b, c] = await Promise.all(registries.map(async registry => await startTestNode(cleanups, { metrics: () => new RegistryMetrics(registry) })))
    if (a == null || b == null || c == null) throw new Error('no nodes')
    const address = b.libp2p.getMultiaddrs()[0]
    if (address == null) throw new Error('B listens nowhere')
    await a.libp2p.dial(address)
    await waitFor(async () => total(await samples(registries[1] ?? new Registry()), 'libp2p_connection_manager_connections', { libp2p_connection_manager_connections: 'inbound' }) === 1 ? true : undefined, { what: 'B counting its inbound connection' })
    const [sa, sb, sc] = await Promise.all(registries.map(samples))
    const connections = (s: typeof sa, direction: string): number => total(s ?? [], 'libp2p_connection_manager_connections', { libp2p_connection_manager_connections: direction })
    expect([connections(sa, 'outbound'), connections(sa, 'inbound')]).toEqual([1, 0])
    expect([connections(sb, 'outbound'), connections(sb, 'inbound')]).toEqual([0, 1])
    expect([connections(sc, 'outbound'), connections(sc, 'inbound')]).toEqual([0, 0])
    // every node has the same families, the ones registered at start included
    const families = async (registry: Registry): Promise<string[]> => (await registry.getMetricsAsJSON()).map(m => m.name).sort()
    const names = await Promise.all(registries.map(families))
    expect(names[0]).toContain('libp2p_tcp_listener_events_total')
    expect(names[1]).toEqual(names[0])
    expect(names[2]).toEqual(names[0])
    // bytes moved on A and B's connection only
    expect(total(sa ?? [], 'libp2p_data_transfer_bytes_total', { protocol: 'global sent' })).toBeGreaterThan(0)
    expect(total(sc ?? [], 'libp2p_data_transfer_bytes_total')).toBe(0)
  })

  it('registers a name once per node, and a calculated group shows only the keys it gives now', async () => {
    const registry = new Registry()
    const metrics = new RegistryMetrics(registry)
    expect(metrics.registerCounter('x_total')).toBe(metrics.registerCounter('x_total'))
    let values: Record<string, number> = { a: 1, b: 2 }
    metrics.registerMetricGroup('things', { label: 'kind', calculate: () => values })
    expect(total(await samples(registry), 'things', { kind: 'b' })).toBe(2)
    values = { a: 3 }
    const now = await samples(registry)
    expect(now.filter(s => s.name === 'things').map(s => [s.labels.kind, s.value])).toEqual([['a', 3]])
    // a second node's metrics on another registry are apart
    const other = new Registry()
    new RegistryMetrics(other).registerCounter('x_total').increment(5)
    expect(total(await samples(registry), 'x_total')).toBe(0)
    expect(total(await samples(other), 'x_total')).toBe(5)
  })
})
