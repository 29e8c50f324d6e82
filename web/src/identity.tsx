// A contact's identity key changed: say so, show the safety number to compare (also as a QR
// code another octet page can scan), and trust the new key only when asked to.
import { useEffect, useState } from 'preact/hooks'
import { api, type SafetyNumbers } from './api.js'
import { QrCode, QrScanner, canScan } from './qr.js'
import { useStore } from './ui.js'

/** Groups of five digits, as Signal shows them. */
const grouped = (n: string): string => n.replace(/\D/g, '').replace(/(\d{5})(?=\d)/g, '$1 ')

export function IdentityWarning ({ peerId }: { peerId: string }) {
  const s = useStore()
  const [numbers, setNumbers] = useState<SafetyNumbers>()
  const [scanning, setScanning] = useState(false)
  const [scanned, setScanned] = useState<boolean>()
  useEffect(() => { void api.safetyNumber(peerId).then(setNumbers, () => {}) }, [peerId])
  const number = numbers?.pendingSafetyNumber ?? numbers?.safetyNumber
  return (
    <section class="identity-warning" role="alert" aria-labelledby="identity-title">
      <h3 id="identity-title">This contact's safety number changed</h3>
      <p>Their identity key is new: they reinstalled, or someone is in the middle. Messages from them wait until you compare the new safety number with them (in person, or over another channel) and trust it.</p>
      {number != null && (
        <>
          <p class="safety-number" data-testid="safety-number">{grouped(number)}</p>
          <QrCode text={number} label="the new safety number as a QR code" />
        </>
      )}
      {scanned != null && <p role="status" class={scanned ? 'ok' : 'error'}>{scanned ? 'The scanned code matches.' : 'The scanned code does NOT match.'}</p>}
      {scanning && <QrScanner onCancel={() => { setScanning(false) }} onResult={text => { setScanning(false); setScanned(text.replace(/\D/g, '') === number?.replace(/\D/g, '')) }} />}
      <p>
        {canScan() && !scanning && <button type="button" onClick={() => { setScanning(true) }}>Scan their code</button>}
        <button type="button" onClick={() => { void api.acceptIdentity(peerId).then(c => { s.contacts.set(c.peerId, c); s.changed() }) }}>I compared it: trust the new key</button>
      </p>
    </section>
  )
}
