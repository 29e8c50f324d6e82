// QR codes drawn as SVG (no inline styles: the page's CSP allows none), and a camera scanner:
// the browser's BarcodeDetector where it has one for QR codes (Chromium on Android, macOS,
// ChromeOS), elsewhere the same interface from the `qr` package's decoder (7 KB gzip), which is
// loaded only when a scan starts.
import encodeQR from 'qr'
import { useEffect, useRef, useState } from 'preact/hooks'

export function QrCode ({ text, label }: { text: string, label: string }) {
  const rows = encodeQR(text, 'raw', { border: 2 })
  const size = rows.length
  let d = ''
  rows.forEach((row, y) => { row.forEach((dark, x) => { if (dark) d += `M${x} ${y}h1v1h-1z` }) })
  return (
    <svg class="qr" viewBox={`0 0 ${size} ${size}`} role="img" aria-label={label} shape-rendering="crispEdges">
      <rect width={size} height={size} class="qr-light" />
      <path d={d} class="qr-dark" />
    </svg>
  )
}

interface Detector { detect: (source: HTMLVideoElement) => Promise<Array<{ rawValue: string }>> }
interface DetectorClass {
  new (options: { formats: string[] }): Detector
  getSupportedFormats?: () => Promise<readonly string[]>
}

async function qrDetector (): Promise<Detector> {
  const native = (globalThis as { BarcodeDetector?: DetectorClass }).BarcodeDetector
  if (native != null && (await native.getSupportedFormats?.().catch(() => []) ?? []).includes('qr_code')) {
    return new native({ formats: ['qr_code'] })
  }
  const { BarcodeDetector } = await import('qr/decode.js')
  return new BarcodeDetector({ formats: ['qr_code'] })
}

export const canScan = (): boolean => navigator.mediaDevices?.getUserMedia != null

/** Reads one QR code with the camera, then stops it. */
export function QrScanner ({ onResult, onCancel }: { onResult: (text: string) => void, onCancel: () => void }) {
  const video = useRef<HTMLVideoElement>(null)
  const [error, setError] = useState<string>()
  useEffect(() => {
    let stream: MediaStream | undefined
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const tick = async (detector: Detector): Promise<void> => {
      if (stopped || video.current == null) return
      const codes = await detector.detect(video.current).catch(() => [])
      if (stopped) return
      if (codes[0] != null) { onResult(codes[0].rawValue); return }
      timer = setTimeout(() => { void tick(detector) }, 250)
    }
    const start = async (): Promise<void> => {
      const detector = await qrDetector()
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } })
      } catch (err) {
        setError(`the camera is not available: ${(err as Error).message}`)
        return
      }
      if (stopped || video.current == null) { stream.getTracks().forEach(t => { t.stop() }); return }
      video.current.srcObject = stream
      await video.current.play()
      await tick(detector)
    }
    start().catch((err: Error) => { setError(`scanning failed: ${err.message}`) })
    return () => {
      stopped = true
      clearTimeout(timer)
      stream?.getTracks().forEach(t => { t.stop() })
    }
  }, [])
  return (
    <div class="scanner">
      <video ref={video} muted playsInline aria-label="camera preview" />
      {error != null && <p role="alert">{error}</p>}
      <button type="button" onClick={onCancel}>Stop scanning</button>
    </div>
  )
}
