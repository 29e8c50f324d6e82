// This node: its PeerId (copyable, and as a QR code), peers, reachability, relays, mailbox.
import { useEffect, useState } from 'preact/hooks'
import { api, type NodeInfo } from './api.js'
import { QrCode } from './qr.js'
import { Copy, Peer } from './ui.js'

export function NodeView () {
  const [info, setInfo] = useState<NodeInfo>()
  const [error, setError] = useState<string>()
  useEffect(() => {
    const load = (): void => { api.node().then(i => { setInfo(i); setError(undefined) }, (err: Error) => { setError(err.message) }) }
    load()
    const timer = setInterval(load, 5000)
    return () => { clearInterval(timer) }
  }, [])
  if (info == null) return <section class="page">{error != null ? <p role="alert" class="error">{error}</p> : <p>Loading…</p>}</section>
  return (
    <section class="page" aria-labelledby="node-title">
      <h2 id="node-title">This node</h2>
      <p>Your address — give it to people who want to write to you:</p>
      <p class="peer-id" data-testid="my-peer-id">{info.peerId}</p>
      <p><Copy text={info.peerId} label="Copy PeerId" /></p>
      <QrCode text={info.peerId} label="this node's PeerId as a QR code" />
      <h3>Reachability</h3>
      <p>{info.reachability}{info.relayOffered ? ', relays for others' : ''}; routing table: {info.routingTableSize} peers</p>
      {info.relayAddresses.length > 0 && <><h4>Reached through relays</h4><ul class="addrs">{info.relayAddresses.map(a => <li key={a}>{a}</li>)}</ul></>}
      <h4>Addresses</h4>
      <ul class="addrs">{(info.announceAddresses.length > 0 ? info.announceAddresses : info.listenAddresses).map(a => <li key={a}>{a}</li>)}</ul>
      <h3>Peers ({info.peers.length})</h3>
      <ul class="rows">{info.peers.map(p => <li key={p.peerId}><Peer peerId={p.peerId} /> <span class="badge">{p.direction}</span>{p.addresses.some(a => a.includes('/p2p-circuit')) && <span class="badge">relayed</span>}</li>)}</ul>
      {info.mailbox != null && <><h3>Mailbox</h3><p>Holding {info.mailbox.envelopes} sealed envelopes ({info.mailbox.bytes} bytes) for {info.mailbox.recipients} offline peers.</p></>}
    </section>
  )
}
