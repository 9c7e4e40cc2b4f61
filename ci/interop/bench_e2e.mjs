// Baseline for `dvm-bench e2e`: two JavaScript hyperswarm peers on a local
// @hyperswarm/testnet (127.0.0.1 only) speaking the 2020117 DVM protocol the
// way the reference agent and customer do (seeds/streaming-guide-p2p-cashu.md):
// NDJSON over the swarm's encrypted stream; the provider only peeks at each
// payment token (getDecodedToken: amount, no verification) and counts credit;
// the customer pays a pre-made token on each pay_required. Tests/bench only.
//
// usage: node bench_e2e.mjs [--runs N] [--chunks N] [--cpp N] [--chunk-bytes N]
// prints one JSON line: {"bench":"e2e","impl":"node-hyperswarm",...}
import Hyperswarm from 'hyperswarm';
import createTestnet from 'hyperdht/testnet.js';
import crypto from 'node:crypto';
import { getEncodedTokenV4, getDecodedToken } from '@cashu/cashu-ts';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const runs = opt('--runs', 3);
const nChunks = opt('--chunks', 20000);
const cpp = opt('--cpp', 10);
const chunkBytes = opt('--chunk-bytes', 32);
const spc = 1;
const deadline = setTimeout(() => { console.error('bench_e2e: timed out'); process.exit(1); }, 300000);

const topic = crypto.createHash('sha256').update('2020117-dvm-kind-5100').digest();

// A syntactically valid token worth one payment (the reference never verifies).
function fakeToken(amount) {
  const proofs = [];
  for (let bit = 0; (1 << bit) <= amount; bit++) {
    if (amount & (1 << bit)) {
      proofs.push({ id: '009a1f293253e41e', amount: 1 << bit, secret: crypto.randomBytes(32).toString('hex'),
                    C: '02' + crypto.randomBytes(32).toString('hex') });
    }
  }
  return getEncodedTokenV4({ mint: 'http://127.0.0.1:3338', unit: 'sat', proofs });
}

function lines(conn, onMsg) {
  let buf = '';
  conn.on('data', (d) => {
    buf += d.toString('utf8');
    const parts = buf.split('\n');
    buf = parts.pop();
    for (const l of parts) if (l) onMsg(JSON.parse(l));
  });
}

function provider(conn) {
  const send = (m) => conn.write(JSON.stringify(m) + '\n');
  let credit = 0, earned = 0, sent = 0, accepted = false, id = null, output = '';
  const data = 'x'.repeat(chunkBytes);
  const pump = () => {
    while (credit > 0 && sent < nChunks) {
      send({ type: 'chunk', id, data });
      output += data;
      credit--; sent++;
      if (sent % 256 === 0 && credit > 0) return setImmediate(pump); // yield to I/O
    }
    if (sent >= nChunks) send({ type: 'result', id, output, total_sats: earned });
    else send({ type: 'pay_required', id, earned, next: spc * cpp });
  };
  lines(conn, (m) => {
    if (m.type === 'request') { id = m.id; send({ type: 'offer', id, sats_per_chunk: spc, chunks_per_payment: cpp }); }
    else if (m.type === 'payment') {
      const t = getDecodedToken(m.token);
      const amount = t.proofs.reduce((s, p) => s + p.amount, 0);
      earned += amount; credit += Math.floor(amount / spc);
      send({ type: 'payment_ack', id, amount });
      if (!accepted) { accepted = true; send({ type: 'accepted', id }); }
      pump();
    }
  });
  conn.on('error', () => {});
}

async function oneRun(testnet, run) {
  const ps = new Hyperswarm({ dht: testnet.createNode() });
  const cs = new Hyperswarm({ dht: testnet.createNode() });
  ps.on('connection', provider);
  await ps.join(topic, { server: true, client: false }).flushed();
  const token = fakeToken(spc * cpp);
  const result = await new Promise((resolve, reject) => {
    let t0 = 0, chunks = 0, paid = 0;
    cs.on('connection', (conn) => {
      const send = (m) => conn.write(JSON.stringify(m) + '\n');
      conn.on('error', reject);
      lines(conn, (m) => {
        if (m.type === 'offer' || m.type === 'pay_required') { paid += spc * cpp; send({ type: 'payment', id: m.id, token }); }
        else if (m.type === 'chunk') chunks++;
        else if (m.type === 'result') resolve({ dt: (performance.now() - t0) / 1000, chunks, paid });
      });
      t0 = performance.now();
      send({ type: 'request', id: 'job-' + run, kind: 5100, input: 'bench', budget: nChunks * spc });
    });
    cs.join(topic, { server: false, client: true });
  });
  await ps.destroy();
  await cs.destroy();
  if (result.chunks !== nChunks) throw new Error(`got ${result.chunks} chunks`);
  return nChunks / result.dt;
}

const testnet = await createTestnet(3, { host: '127.0.0.1' });
const rates = [];
try {
  for (let r = 0; r < runs; r++) rates.push(await oneRun(testnet, r));
} finally {
  await testnet.destroy();
}
clearTimeout(deadline);
const s = [...rates].sort((a, b) => a - b);
const med = s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
console.log(JSON.stringify({ bench: 'e2e', impl: 'node-hyperswarm', chunks_per_payment: cpp, chunk_bytes: chunkBytes,
  chunks: nChunks, verified_payments: 0, chunks_per_s: Math.round(med), runs, min: Math.round(s[0]),
  max: Math.round(s[s.length - 1]), peak_rss_kb: Math.round(process.resourceUsage().maxRSS) }));
