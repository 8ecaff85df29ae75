// load.mjs - bounded load on ds4-server: N concurrent clients x M requests
// over all four generation APIs, streaming and not; every 4th request
// disconnects mid-stream (or mid-wait when not streaming). Afterwards the
// server must be healthy, idle (queue 0) and still answer correctly.
import assert from "node:assert/strict";

const BASE = process.env.BASE;
const CLIENTS = Number(process.env.CLIENTS ?? 8), PER = Number(process.env.PER ?? 20);
const bodies = [
  ["/v1/chat/completions", s => ({ messages: [{ role: "user", content: "hi " + s }], max_tokens: 24, stream: s % 2 === 0 })],
  ["/v1/messages", s => ({ messages: [{ role: "user", content: "hey " + s }], max_tokens: 24, stream: s % 2 === 1 })],
  ["/v1/responses", s => ({ input: "yo " + s, max_output_tokens: 24, stream: s % 3 === 0 })],
  ["/v1/completions", s => ({ prompt: "once " + s, max_tokens: 24, stream: s % 2 === 0 })],
];
let ok = 0, aborted = 0, errors = [];

async function one(client, i) {
  const seq = client * PER + i;
  const [path, mk] = bodies[(seq + Math.floor(seq / 4)) % bodies.length];
  const body = mk(seq);
  const ctl = new AbortController();
  const disconnect = seq % 4 === 3;
  if (disconnect) {
    // A long scripted answer: the server must notice the hang-up and stop.
    const tag = " LONGTEXT";
    if (body.messages) body.messages[0].content += tag; else if (body.input) body.input += tag; else body.prompt += tag;
    if ("max_tokens" in body) body.max_tokens = 3000; else body.max_output_tokens = 3000;
  }
  // Non-streaming disconnects cannot wait for headers (they come at the end).
  const timer = disconnect && !body.stream ? setTimeout(() => ctl.abort(), 700) : null;
  try {
    const res = await fetch(BASE + path, { method: "POST", body: JSON.stringify(body), signal: ctl.signal,
      headers: { "content-type": "application/json" } });
    if (res.status !== 200) { errors.push(`${path} status ${res.status}: ${await res.text()}`); return; }
    if (disconnect) {
      if (body.stream) { const r = res.body.getReader(); await r.read(); }
      ctl.abort();
      aborted++;
      return;
    }
    const text = await res.text();
    if (body.stream) assert.ok(text.includes("data: "), `${path}: no SSE data`);
    else JSON.parse(text);
    ok++;
  } catch (e) {
    if (disconnect && e.name === "AbortError") { aborted++; return; }
    errors.push(`${path}: ${e}`);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

const t0 = Date.now();
await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => { for (let i = 0; i < PER; i++) await one(c, i); }));
console.log(`${ok} ok, ${aborted} disconnected, ${errors.length} errors in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
if (errors.length) { console.error(errors.slice(0, 10).join("\n")); process.exit(1); }
// Let the worker drain what disconnected clients left behind.
for (let i = 0; i < 100; i++) {
  const m = await (await fetch(BASE + "/metrics")).text();
  if (/ds4_queue_depth 0/.test(m) && /ds4_requests_processing 0/.test(m)) break;
  await new Promise(r => setTimeout(r, 100));
}
const h = await fetch(BASE + "/health");
assert.equal(h.status, 200);
const m = await (await fetch(BASE + "/metrics")).text();
assert.match(m, /ds4_queue_depth 0/);
const disc = Number(/ds4_disconnects_total (\d+)/.exec(m)[1]);
assert.ok(disc >= aborted / 2, `only ${disc} of ${aborted} disconnects stopped their generation`);
const r = await fetch(BASE + "/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ messages: [{ role: "user", content: "after load" }], max_tokens: 4 }) });
assert.equal(r.status, 200);
const j = await r.json();
assert.equal(j.object, "chat.completion");
console.log(m.split("\n").filter(l => /^ds4_(jobs_total|disconnects_total|generated_tokens_total|decode_tokens_per_second|prefill_tokens_per_second)/.test(l)).join("\n"));
console.log("load test passed");
