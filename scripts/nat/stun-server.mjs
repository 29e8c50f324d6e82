// A STUN binding responder (RFC 8489 / 5389, Binding method only, no auth): enough for ICE to learn
// a server-reflexive candidate. A public octet peer could run this beside its libp2p listener.
// Run standalone: node scripts/nat/stun-server.mjs [host] [port]
import dgram from 'node:dgram'

const MAGIC = 0x2112a442
const BINDING_REQUEST = 0x0001
const BINDING_SUCCESS = 0x0101
const ATTR_MAPPED_ADDRESS = 0x0001
const ATTR_XOR_MAPPED_ADDRESS = 0x0020

/** Builds the Binding success response to `req` from `addr:port` (IPv4 only), or null to ignore. */
export function bindingResponse (req, addr, port) {
  if (req.length < 20 || (req[0] & 0xc0) !== 0) return null // not STUN
  if (req.readUInt16BE(0) !== BINDING_REQUEST || req.readUInt32BE(4) !== MAGIC) return null
  const octets = addr.split('.').map(Number)
  if (octets.length !== 4) return null
  const ip = ((octets[0] << 24) >>> 0) + (octets[1] << 16) + (octets[2] << 8) + octets[3]
  const res = Buffer.alloc(20 + 12 + 12)
  res.writeUInt16BE(BINDING_SUCCESS, 0)
  res.writeUInt16BE(24, 2) // two 8-byte-value attributes with headers
  req.copy(res, 4, 4, 20) // magic cookie + transaction id
  let o = 20
  res.writeUInt16BE(ATTR_XOR_MAPPED_ADDRESS, o); res.writeUInt16BE(8, o + 2)
  res.writeUInt8(0, o + 4); res.writeUInt8(0x01, o + 5)
  res.writeUInt16BE(port ^ (MAGIC >>> 16), o + 6)
  res.writeUInt32BE((ip ^ MAGIC) >>> 0, o + 8)
  o += 12
  res.writeUInt16BE(ATTR_MAPPED_ADDRESS, o); res.writeUInt16BE(8, o + 2)
  res.writeUInt8(0, o + 4); res.writeUInt8(0x01, o + 5)
  res.writeUInt16BE(port, o + 6)
  res.writeUInt32BE(ip >>> 0, o + 8)
  return res
}

/** Starts a responder; resolves to the bound socket. */
export async function startStunServer ({ host = '0.0.0.0', port = 3478, onRequest } = {}) {
  const sock = dgram.createSocket('udp4')
  sock.on('message', (msg, rinfo) => {
    const res = bindingResponse(msg, rinfo.address, rinfo.port)
    if (res == null) return
    onRequest?.(rinfo)
    sock.send(res, rinfo.port, rinfo.address)
  })
  await new Promise((resolve, reject) => { sock.once('error', reject); sock.bind(port, host, resolve) })
  return sock
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const s = await startStunServer({ host: process.argv[2] ?? '127.0.0.1', port: Number(process.argv[3] ?? 3478), onRequest: r => console.log('binding from', `${r.address}:${r.port}`) })
  console.log('STUN on', s.address())
}
