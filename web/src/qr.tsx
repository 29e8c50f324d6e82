// QR codes drawn as SVG (no inline styles: the page's CSP allows none), and a camera scanner
// where the browser has BarcodeDetector (Chromium on Android, macOS, ChromeOS; not Linux desktop).
import { encode } from 'uqr'
import { useEffect, useRef, useState } from 'preact/hooks'

export function QrCode ({ text, label }: { text: string, label: string }) {
  const { data, size } = encode(text, { border: 2 })
  let d = ''
  data.forEach((row, y) => { row.forEach((dark, x) => { if (dark) d += `M${x} ${y}h1v1h-1z` }) })
  return (
    <svg class="qr" viewBox={`0 0 ${size} ${size}`} role="img" aria-label={label} shape-rendering="crispEdges">
      <rect width={size} height={size} class="qr-light" />
      <path d={d} class="qr-dark" />
    </svg>
  )
}

interface Detector { detect: (source: HTMLVideoElement) => Promise<Array<{ rawValue: string }>> }
type DetectorClass = new (options: { formats: string[] }) => Detector

function detectorClass (): DetectorClass | undefined {
  return (globalThis as { BarcodeDetector?: DetectorClass }).BarcodeDetector
}

export const canScan = (): boolean => detectorClass() != null && navigator.mediaDevices?.getUserMedia != null

/** Reads one QR code with the camera, then stops it. */
export function QrScanner ({ onResult, onCancel }: { onResult: (text: string) => void, onCancel: () => void }) {
  const video = useRef<HTMLVideoElement>(null)
  const [error, setError] = useState<string>()
  useEffect(() => {
    const Detector = detectorClass()
    if (Detector == null) return
    const detector = new Detector({ formats: ['qr_code'] })
    let stream: MediaStream | undefined
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const tick = async (): Promise<void> => {
      if (stopped || video.current == null) return
      const codes = await detector.detect(video.current).catch(() => [])
      if (codes[0] != null) { onResult(codes[0].rawValue); return }
      timer = setTimeout(() => { void tick() }, 250)
    }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } }).then(async s => {
      stream = s
      if (video.current == null) return
      video.current.srcObject = s
      await video.current.play()
      await tick()
    }, (err: Error) => { setError(`the camera is not available: ${err.message}`) })
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
