// `octet testnet --ui`: every node of the testnet as a graph, redrawn every second from
// GET /testnet/state. Lines are connections (dashed: relayed); a node's ring pulses when it
// moved direct, group or mailbox traffic since the last picture; a stopped node is grey.
// Click a node (or Enter on it) to see its numbers and to stop or start it.
import { render } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import type { NodePicture } from '../../../src/testnet/picture.js'

type Traffic = NodePicture['traffic']

const INTERVAL = 1000
const SIZE = 600
const R = SIZE / 2 - 70

async function state (): Promise<NodePicture[]> {
  const res = await fetch('/testnet/state', { signal: AbortSignal.timeout(5000) })
  if (!res.ok) throw new Error(`the testnet answered ${res.status}`)
  return (await res.json() as { nodes: NodePicture[] }).nodes
}

function App () {
  const [nodes, setNodes] = useState<NodePicture[]>([])
  const [moved, setMoved] = useState<Record<string, Traffic>>({})
  const [error, setError] = useState<string>()
  const [selected, setSelected] = useState<string>()
  const last = useRef(new Map<string, Traffic>())
  const apply = (list: NodePicture[]): void => {
    const delta: Record<string, Traffic> = {}
    for (const n of list) {
      const before = last.current.get(n.name)
      if (before != null) delta[n.name] = { direct: n.traffic.direct - before.direct, group: n.traffic.group - before.group, mailbox: n.traffic.mailbox - before.mailbox }
      if (n.running) last.current.set(n.name, n.traffic)
    }
    setMoved(delta)
    setNodes(list)
    setError(undefined)
  }
  useEffect(() => {
    let stopped = false
    // each picture asks every node five questions (with 40 nodes, about a quarter of a 2-core
    // machine): a page nobody looks at asks nothing, and catches up as soon as it is shown
    let busy = false
    const tick = async (): Promise<void> => {
      if (stopped || busy || document.visibilityState === 'hidden') return
      busy = true
      try { apply(await state()) } catch (err) { setError((err as Error).message) } finally { busy = false }
      clearTimeout(timer)
      if (!stopped) timer = setTimeout(() => { void tick() }, INTERVAL)
    }
    const onVisible = (): void => {
      if (document.visibilityState === 'visible') { clearTimeout(timer); void tick() }
    }
    document.addEventListener('visibilitychange', onVisible)
    let timer = setTimeout(() => { void tick() }, 0)
    return () => { stopped = true; clearTimeout(timer); document.removeEventListener('visibilitychange', onVisible) }
  }, [])

  const at = new Map(nodes.map((n, i) => {
    const angle = (2 * Math.PI * i) / Math.max(1, nodes.length) - Math.PI / 2
    return [n.peerId, { x: SIZE / 2 + R * Math.cos(angle), y: SIZE / 2 + R * Math.sin(angle) }]
  }))
  const edges = new Map<string, { a: string, b: string, relayed: boolean }>()
  for (const n of nodes) {
    if (!n.running) continue
    for (const p of n.peers) {
      if (!at.has(p.peerId)) continue
      const key = [n.peerId, p.peerId].sort().join('|')
      const known = edges.get(key)
      edges.set(key, { a: n.peerId, b: p.peerId, relayed: (known?.relayed ?? true) && p.relayed })
    }
  }
  const chosen = nodes.find(n => n.name === selected)
  const act = async (name: string, what: 'stop' | 'start'): Promise<void> => {
    const res = await fetch(`/testnet/nodes/${name}/${what}`, { method: 'POST' })
    if (res.ok) apply((await res.json() as { nodes: NodePicture[] }).nodes)
    else setError(`${what} ${name}: ${res.status}`)
  }
  const totals = nodes.reduce((t, n) => ({ up: t.up + (n.running ? 1 : 0), links: t.links, held: t.held + (n.mailbox?.envelopes ?? 0) }), { up: 0, links: edges.size, held: 0 })
  return (
    <div class="testnet">
      <header class="top"><h1>octet testnet</h1>
        <p data-testid="summary">{totals.up}/{nodes.length} nodes up · {totals.links} connections · {totals.held} envelopes in mailboxes</p>
      </header>
      {error != null && <p class="banner offline" role="status">The testnet does not answer: {error}</p>}
      <div class="testnet-body">
        <svg class="graph" viewBox={`0 0 ${SIZE} ${SIZE}`} role="img" aria-label={`graph of ${nodes.length} nodes and ${edges.size} connections`}>
          {[...edges.values()].map(e => {
            const a = at.get(e.a); const b = at.get(e.b)
            return a != null && b != null ? <line key={`${e.a}|${e.b}`} x1={a.x} y1={a.y} x2={b.x} y2={b.y} class={e.relayed ? 'edge relayed' : 'edge'} data-relayed={String(e.relayed)} /> : null
          })}
          {nodes.map(n => {
            const p = at.get(n.peerId)
            if (p == null) return null
            const m = moved[n.name]
            const busy = m != null && (m.direct > 0 || m.group > 0 || m.mailbox > 0)
            return (
              <g key={n.name} class={`node ${n.running ? 'up' : 'down'} ${busy ? 'busy' : ''} ${selected === n.name ? 'chosen' : ''}`} data-node={n.name} data-running={String(n.running)}
                tabindex={0} role="button" aria-label={`${n.name}, ${n.running ? `${n.peers.length} peers` : 'stopped'}`}
                onClick={() => { setSelected(n.name) }} onKeyDown={e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); setSelected(n.name) } }}>
                <circle cx={p.x} cy={p.y} r={26} />
                <text x={p.x} y={p.y + 4} text-anchor="middle">{n.name.replace('node-', '')}</text>
                <text x={p.x} y={p.y + 44} text-anchor="middle" class="small">{n.running ? `rt ${n.routingTableSize ?? '?'} · ✉ ${n.mailbox?.envelopes ?? 0}` : 'stopped'}</text>
              </g>
            )
          })}
        </svg>
        <aside class="page" aria-live="polite">
          {chosen == null
            ? <p class="hint">Pick a node (click, or Tab and Enter) to see it and to stop or start it. Solid lines: direct connections; dashed: relayed. A ring lights up when the node moved messages.</p>
            : (
              <>
                <h2>{chosen.name}</h2>
                <p class="peer-id">{chosen.peerId}</p>
                <ul class="rows">
                  <li>{chosen.running ? 'running' : 'stopped'}{chosen.reachability != null ? `, ${chosen.reachability}` : ''}</li>
                  <li>{chosen.peers.length} peers ({chosen.peers.filter(p => p.relayed).length} relayed), routing table {chosen.routingTableSize ?? '?'}</li>
                  <li>{chosen.relays} relay reservations</li>
                  <li>mailbox: {chosen.mailbox?.envelopes ?? 0} envelopes for {chosen.mailbox?.recipients ?? 0} peers</li>
                  <li>traffic so far: direct {chosen.traffic.direct}, group {chosen.traffic.group}, mailbox {chosen.traffic.mailbox}</li>
                  {chosen.error != null && <li class="error">{chosen.error}</li>}
                </ul>
                {chosen.running
                  ? <button type="button" class="danger" onClick={() => { void act(chosen.name, 'stop') }}>Stop {chosen.name}</button>
                  : <button type="button" onClick={() => { void act(chosen.name, 'start') }}>Start {chosen.name}</button>}
              </>
              )}
        </aside>
      </div>
    </div>
  )
}

const root = document.getElementById('app')
if (root != null) {
  root.textContent = ''
  render(<App />, root)
}
