// Generates fixtures/vectors/noise/*.json from the JavaScript reference
// (noise-handshake + noise-curve-ed + @hyperswarm/secret-stream) with fixed
// keys, so the C tests can check our bytes against theirs.
// Usage: node ci/interop/gen_noise_vectors.mjs OUTDIR
import { createRequire } from 'node:module'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

const require = createRequire(import.meta.url)
const Noise = require('noise-handshake')
const curve = require('noise-curve-ed')
const SecretStream = require('@hyperswarm/secret-stream')
const sodium = require('sodium-universal')

const outDir = process.argv[2]
if (!outDir) {
  console.error('usage: gen_noise_vectors.mjs OUTDIR')
  process.exit(2)
}

const hex = (b) => Buffer.from(b).toString('hex')
const seed = (byte) => Buffer.alloc(32, byte)
const kp = (s) => {
  const publicKey = Buffer.alloc(32)
  const secretKey = Buffer.alloc(64)
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, s)
  return { publicKey, secretKey }
}
// A curve whose "random" ephemeral keys come from a fixed list of seeds.
const fixedCurve = (seeds) => ({ ...curve, generateKeyPair: () => kp(seeds.shift()) })

function handshake(pattern, prologue, payloads) {
  const iS = seed(0x11), rS = seed(0x22), iE = seed(0x33), rE = seed(0x44)
  const ini = new Noise(pattern, true, kp(iS), { curve: fixedCurve([iE]) })
  const res = new Noise(pattern, false, kp(rS), { curve: fixedCurve([rE]) })
  ini.initialise(prologue, pattern === 'IK' ? kp(rS).publicKey : undefined)
  res.initialise(prologue)
  const messages = []
  let from = ini, to = res
  for (const p of payloads) {
    const msg = from.send(Buffer.from(p, 'hex'))
    const msgHex = hex(msg) // before recv: noise-handshake wipes re in place
    const got = to.recv(msg)
    if (hex(got) !== p) throw new Error('payload mismatch')
    messages.push({ from: from === ini ? 'initiator' : 'responder', payload: p, message: msgHex })
    ;[from, to] = [to, from]
  }
  if (!ini.complete || !res.complete) throw new Error('incomplete')
  return {
    pattern,
    prologue: hex(prologue),
    initiator_static_seed: hex(iS),
    responder_static_seed: hex(rS),
    initiator_ephemeral_seed: hex(iE),
    responder_ephemeral_seed: hex(rE),
    messages,
    handshake_hash: hex(ini.hash),
    initiator_tx: hex(ini.tx),
    initiator_rx: hex(ini.rx),
    responder_tx: hex(res.tx),
    responder_rx: hex(res.rx)
  }
}

const vectors = [
  handshake('XX', Buffer.alloc(0), ['', '', '']),
  handshake('XX', Buffer.from('dvmstream prologue'), ['00', 'abcdef', '0102030405']),
  handshake('IK', Buffer.alloc(0), ['', '']),
  handshake('IK', Buffer.alloc(32, 0x5a), ['68656c6c6f', '776f726c64'])
]
writeFileSync(join(outDir, 'handshakes.json'), JSON.stringify(vectors, null, 1) + '\n')

// A secret-stream transcript: the bytes each side writes, with fixed static
// and ephemeral keys (the secretstream headers are random).
async function transcript() {
  const eph = [seed(0x33), seed(0x44)] // initiator's first, then responder's
  const saved = curve.generateKeyPair
  curve.generateKeyPair = () => kp(eph.shift())
  const a = new SecretStream(true, null, { keyPair: kp(seed(0x11)) })
  const b = new SecretStream(false, null, { keyPair: kp(seed(0x22)) })
  const wire = { initiator: [], responder: [] }
  a.rawStream.on('data', (d) => { wire.initiator.push(Buffer.from(d)); b.rawStream.write(d) })
  b.rawStream.on('data', (d) => { wire.responder.push(Buffer.from(d)); a.rawStream.write(d) })
  const fromInitiator = ['68656c6c6f', '', 'ab'.repeat(1000)]
  const fromResponder = ['776f726c64', '00ff']
  const gotB = [], gotA = []
  b.on('data', (d) => gotB.push(hex(d)))
  a.on('data', (d) => gotA.push(hex(d)))
  await Promise.all([a.opened, b.opened])
  curve.generateKeyPair = saved
  for (const m of fromInitiator) a.write(Buffer.from(m, 'hex'))
  for (const m of fromResponder) b.write(Buffer.from(m, 'hex'))
  for (let i = 0; i < 50 && (gotA.length < fromResponder.length || gotB.length < fromInitiator.length); i++) {
    await new Promise((r) => setTimeout(r, 10))
  }
  if (JSON.stringify(gotB) !== JSON.stringify(fromInitiator)) throw new Error('b got ' + gotB)
  if (JSON.stringify(gotA) !== JSON.stringify(fromResponder)) throw new Error('a got ' + gotA)
  const out = {
    initiator_static_seed: hex(seed(0x11)),
    responder_static_seed: hex(seed(0x22)),
    initiator_ephemeral_seed: hex(seed(0x33)),
    responder_ephemeral_seed: hex(seed(0x44)),
    handshake_hash: hex(a.handshakeHash),
    initiator_writes: wire.initiator.map(hex),
    responder_writes: wire.responder.map(hex),
    initiator_messages: fromInitiator,
    responder_messages: fromResponder
  }
  a.destroy()
  b.destroy()
  return out
}
writeFileSync(join(outDir, 'secretstream_transcript.json'), JSON.stringify(await transcript(), null, 1) + '\n')

// Streams started from a handshake done elsewhere (as hyperdht does after
// its IK handshake): the IK vector with the 32-byte prologue supplies the keys.
async function prehandshaken() {
  const v = vectors[3]
  const iKp = kp(Buffer.from(v.initiator_static_seed, 'hex'))
  const rKp = kp(Buffer.from(v.responder_static_seed, 'hex'))
  const hash = Buffer.from(v.handshake_hash, 'hex')
  const a = new SecretStream(true, null, {
    handshake: { tx: Buffer.from(v.initiator_tx, 'hex'), rx: Buffer.from(v.initiator_rx, 'hex'), hash, publicKey: iKp.publicKey, remotePublicKey: rKp.publicKey }
  })
  const b = new SecretStream(false, null, {
    handshake: { tx: Buffer.from(v.responder_tx, 'hex'), rx: Buffer.from(v.responder_rx, 'hex'), hash, publicKey: rKp.publicKey, remotePublicKey: iKp.publicKey }
  })
  const wire = { initiator: [], responder: [] }
  a.rawStream.on('data', (d) => { wire.initiator.push(Buffer.from(d)); b.rawStream.write(d) })
  b.rawStream.on('data', (d) => { wire.responder.push(Buffer.from(d)); a.rawStream.write(d) })
  const fromInitiator = ['6468742d6f70656e', '', '01']
  const fromResponder = ['6f6b']
  const gotA = [], gotB = []
  a.on('data', (d) => gotA.push(hex(d)))
  b.on('data', (d) => gotB.push(hex(d)))
  await Promise.all([a.opened, b.opened])
  for (const m of fromInitiator) a.write(Buffer.from(m, 'hex'))
  for (const m of fromResponder) b.write(Buffer.from(m, 'hex'))
  for (let i = 0; i < 50 && (gotA.length < fromResponder.length || gotB.length < fromInitiator.length); i++) {
    await new Promise((r) => setTimeout(r, 10))
  }
  if (JSON.stringify(gotB) !== JSON.stringify(fromInitiator)) throw new Error('b got ' + gotB)
  if (JSON.stringify(gotA) !== JSON.stringify(fromResponder)) throw new Error('a got ' + gotA)
  a.destroy()
  b.destroy()
  return {
    from_vector: 3,
    initiator_writes: wire.initiator.map(hex),
    responder_writes: wire.responder.map(hex),
    initiator_messages: fromInitiator,
    responder_messages: fromResponder
  }
}
writeFileSync(join(outDir, 'secretstream_prehandshaken.json'), JSON.stringify(await prehandshaken(), null, 1) + '\n')
console.log('wrote', outDir)
