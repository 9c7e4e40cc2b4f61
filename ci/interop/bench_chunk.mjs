// Baseline for `dvm-bench chunk`: the reference implementation's hot path as
// seeds/streaming-guide-p2p-cashu.md and the reference agent do it —
// provider: JSON.stringify(msg) + "\n" per chunk; customer: buffer the bytes,
// split("\n"), JSON.parse per line, count credit per chunk. Tests/bench only.
//
// usage: node bench_chunk.mjs [--runs N] [--scale X]   (JSON lines on stdout)
const args = process.argv.slice(2);
let runs = 5, scale = 1;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--runs') runs = Number(args[++i]);
  else if (args[i] === '--scale') scale = Number(args[++i]);
}

function oneRun(chunkBytes, n) {
  const data = 'x'.repeat(chunkBytes);
  const id = 'job-0123456789abcdef';
  const readSize = 65536; // bytes handed to the parser per "socket read"
  let wire = [];
  let pending = '';
  let buffer = '';
  let chunks = 0, credit = n, bytes = 0;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const consume = (s) => {
    buffer += s;
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const line of lines) {
      if (!line) continue;
      const msg = JSON.parse(line);
      if (msg.type === 'chunk') {
        chunks++;
        credit--;
        bytes += msg.data.length;
      }
    }
  };
  for (let i = 0; i < n; i++) {
    const line = JSON.stringify({ type: 'chunk', id, data }) + '\n';
    pending += line;
    if (pending.length >= readSize) { consume(pending); pending = ''; }
  }
  if (pending) consume(pending);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const cu = process.cpuUsage(c0); // all threads (JIT, GC helpers too), user + system
  const dc = (cu.user + cu.system) / 1e6;
  if (chunks !== n || credit !== 0 || bytes !== n * chunkBytes) throw new Error('miscount');
  return { msgs: n / dt, cpu: dc > 0 ? n / dc : n / dt, mbps: (n * (chunkBytes + 0)) / dt / 1e6 };
}

function median(v) { const s = [...v].sort((a, b) => a - b); const k = s.length >> 1; return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2; }

for (const cb of [16, 64, 1024]) {
  const n = Math.max(1000, Math.round((cb >= 1024 ? 100000 : 1000000) * scale));
  oneRun(cb, Math.min(n, 20000)); // warm up the JIT
  const rates = [], mb = [], cpu = [];
  for (let r = 0; r < runs; r++) { const x = oneRun(cb, n); rates.push(x.msgs); mb.push(x.mbps); cpu.push(x.cpu); }
  const s = [...rates].sort((a, b) => a - b);
  console.log(JSON.stringify({ bench: 'chunk', impl: 'node', chunk_bytes: cb, msgs_per_s: Math.round(median(rates)), MBps: +median(mb).toFixed(1), cpu_msgs_per_s: Math.round(median(cpu)), runs, min: Math.round(s[0]), max: Math.round(s[s.length - 1]), peak_rss_kb: Math.round(process.resourceUsage().maxRSS) }));
}
