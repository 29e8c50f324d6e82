import { connect, type Socket } from 'node:net'

export interface RawAnswer {
  status: number
  headers: Record<string, string>
  /** the body parsed as JSON, or the text when it is not JSON */
  body: any
}

/**
 * Sends bytes as they are to an HTTP server (TCP port or Unix socket) and reads the answer
 * until the server closes: for what fetch refuses to send (a foreign or missing Host header,
 * oversized headers, a malformed request line). Requests should say `Connection: close`.
 */
export async function rawHttp (to: { port: number } | { path: string }, request: string): Promise<RawAnswer> {
  const socket = 'port' in to ? connect(to.port, '127.0.0.1') : connect(to.path)
  socket.once('connect', () => { socket.write(request) })
  const { error, ...answer } = await readAnswer(socket)
  if (answer.status === 0 && error != null) throw new Error(error)
  return answer
}

/**
 * Reads what the server sends on `socket` until it closes (10 s at most), as one answer. A
 * socket error after part of the answer came (the server answered and closed before it read
 * all we sent: EPIPE / ECONNRESET) is returned beside it; with nothing read, status is 0.
 */
export async function readAnswer (socket: Socket): Promise<RawAnswer & { error?: string }> {
  const chunks: Buffer[] = []
  let error: string | undefined
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.setTimeout(10_000, () => socket.destroy(new Error('no answer in 10 s')))
  socket.on('error', err => { error ??= (err as NodeJS.ErrnoException).code ?? err.message })
  await new Promise<void>(resolve => { socket.once('close', () => { resolve() }) })
  const text = Buffer.concat(chunks).toString('utf8')
  const [head = '', ...rest] = text.split('\r\n\r\n')
  const [statusLine = '', ...headerLines] = head.split('\r\n')
  const headers = Object.fromEntries(headerLines.map(line => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
  let body: any = rest.join('\r\n\r\n')
  try { body = JSON.parse(body) } catch { /* not JSON: kept as text */ }
  return { status: Number(statusLine.split(' ')[1] ?? 0) || 0, headers, body, ...(error != null ? { error } : {}) }
}

/** A GET (or other) request line with headers, ending the connection after the answer. */
export function request (method: string, path: string, headers: Record<string, string>, body?: string): string {
  const lines = [`${method} ${path} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'connection: close']
  if (body != null) lines.push(`content-length: ${Buffer.byteLength(body)}`)
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`
}
