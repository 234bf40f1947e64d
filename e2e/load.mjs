// A bounded load test of `llama2 serve` on loopback through the openai
// client: REQUESTS requests, CONCURRENCY at a time, half of them streamed.
// Every request must succeed or get 429 (the server's bounded queue, by
// design); the whole run must end within DEADLINE_MS.
import OpenAI from 'openai';

const baseURL = process.env.LLAMA2_BASE_URL;
if (!/^http:\/\/127\.0\.0\.1:\d+\/v1$/.test(baseURL ?? '')) {
  console.error('LLAMA2_BASE_URL must be a 127.0.0.1 URL (run ./run.sh)');
  process.exit(2);
}
const REQUESTS = Number(process.env.LOAD_REQUESTS ?? 200);
const CONCURRENCY = Number(process.env.LOAD_CONCURRENCY ?? 8);
const MAX_TOKENS = Number(process.env.LOAD_MAX_TOKENS ?? 16);
const DEADLINE_MS = Number(process.env.LOAD_DEADLINE_MS ?? 120_000);

const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
const deadline = setTimeout(() => {
  console.error(`load test: not finished after ${DEADLINE_MS} ms`);
  process.exit(1);
}, DEADLINE_MS);

async function one(i) {
  const streamed = i % 2 === 1;
  const chat = i % 4 >= 2;
  const common = { model: 'stories260K', max_tokens: MAX_TOKENS, seed: i + 1, stream: streamed };
  const start = performance.now();
  try {
    let text = '';
    if (chat) {
      const r = await client.chat.completions.create(
        { ...common, messages: [{ role: 'user', content: `Story number ${i}` }] });
      if (streamed) { for await (const c of r) text += c.choices[0]?.delta?.content ?? ''; }
      else text = r.choices[0].message.content;
    } else {
      const r = await client.completions.create({ ...common, prompt: 'Once upon a time' });
      if (streamed) { for await (const c of r) text += c.choices[0]?.text ?? ''; }
      else text = r.choices[0].text;
    }
    return { ok: true, streamed, ms: performance.now() - start, chars: text.length };
  } catch (err) {
    if (err instanceof OpenAI.APIError && err.status === 429) return { busy: true, ms: performance.now() - start };
    return { failed: true, err: String(err) };
  }
}

const results = [];
let next = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
  while (next < REQUESTS) results.push(await one(next++));
}));
const seconds = (performance.now() - t0) / 1000;
clearTimeout(deadline);

const pct = (sorted, p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)] : NaN;
const ok = results.filter((r) => r.ok);
const busy = results.filter((r) => r.busy);
const failed = results.filter((r) => r.failed);
const lat = ok.map((r) => r.ms).sort((a, b) => a - b);
const fmt = (x) => x.toFixed(1);
console.log(`load: ${results.length} requests (${CONCURRENCY} at a time, half streamed, max_tokens ${MAX_TOKENS}) in ${seconds.toFixed(2)} s`);
console.log(`load: ${ok.length} ok (${ok.filter((r) => r.streamed).length} streamed), ${busy.length} got 429, ${failed.length} failed`);
console.log(`load: ${fmt(results.length / seconds)} requests/s, ${fmt(ok.length / seconds)} completed/s; latency of completed: p50 ${fmt(pct(lat, 50))} ms, p99 ${fmt(pct(lat, 99))} ms, max ${fmt(lat.at(-1) ?? NaN)} ms`);
for (const f of failed.slice(0, 5)) console.error('load: failure:', f.err);
if (failed.length > 0 || results.length !== REQUESTS || ok.length === 0) process.exit(1);
