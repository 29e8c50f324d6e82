// Safety numbers: each conversation can show its own (as digits and as a QR code another octet
// page can scan with a camera, to compare in person); when a contact's identity key changed the
// page says so, shows the new number, and trusts the new key only when asked to.
import { useEffect, useState } from 'preact/hooks'
import { api, type SafetyNumbers } from './api.js'
import { QrCode, QrScanner, canScan } from './qr.js'
import { useStore } from './ui.js'

/** Groups of five digits, as Signal shows them. */
const grouped = (n: string): string => n.replace(/\D/g, '').replace(/(\d{5})(?=\d)/g, '$1 ')

/** A safety number as digits and as a QR code, and a camera scan of the other side's code to compare with it. */
function SafetyNumberCheck ({ number, label }: { number: string, label: string }) {
  const [scanning, setScanning] = useState(false)
  const [scanned, setScanned] = useState<boolean>()
  return (
    <>
      <p class="safety-number" data-testid="safety-number">{grouped(number)}</p>
      <QrCode text={number} label={label} />
      {scanned != null && <p role="status" class={scanned ? 'ok' : 'error'}>{scanned ? 'The scanned code matches.' : 'The scanned code does NOT match.'}</p>}
      {scanning && <QrScanner onCancel={() => { setScanning(false) }} onResult={text => { setScanning(false); setScanned(text.replace(/\D/g, '') === number.replace(/\D/g, '')) }} />}
      {canScan() && !scanning && <p><button type="button" onClick={() => { setScanned(undefined); setScanning(true) }}>Scan their code</button></p>}
    </>
  )
}

/** A conversation's safety number, on request: the same 60 digits on both sides while neither key changed. */
export function SafetyNumberPanel ({ peerId }: { peerId: string }) {
  const [open, setOpen] = useState(false)
  const [number, setNumber] = useState<string>()
  const [error, setError] = useState<string>()
  useEffect(() => {
    if (!open) return
    setError(undefined)
    api.safetyNumber(peerId).then(n => { setNumber(n.safetyNumber) }, (err: Error) => { setError(err.message) })
  }, [open, peerId])
  return (
    <details class="safety" onToggle={e => { setOpen(e.currentTarget.open) }}>
      <summary>Safety number</summary>
      <p>Compare it with your contact's, in person or over another channel: if they match, no one is in the middle.</p>
      {error != null && <p role="alert" class="error">{error}</p>}
      {number != null && <SafetyNumberCheck number={number} label="the safety number as a QR code" />}
    </details>
  )
}

export function IdentityWarning ({ peerId }: { peerId: string }) {
  const s = useStore()
  const [numbers, setNumbers] = useState<SafetyNumbers>()
  useEffect(() => { void api.safetyNumber(peerId).then(setNumbers, () => {}) }, [peerId])
  const number = numbers?.pendingSafetyNumber ?? numbers?.safetyNumber
  return (
    <section class="identity-warning" role="alert" aria-labelledby="identity-title">
      <h3 id="identity-title">This contact's safety number changed</h3>
      <p>Their identity key is new: they reinstalled, or someone is in the middle. Messages from them wait until you compare the new safety number with them (in person, or over another channel) and trust it.</p>
      {number != null && <SafetyNumberCheck number={number} label="the new safety number as a QR code" />}
      <p>
        <button type="button" onClick={() => { void api.acceptIdentity(peerId).then(c => { s.contacts.set(c.peerId, c); s.changed() }) }}>I compared it: trust the new key</button>
      </p>
    </section>
  )
}
