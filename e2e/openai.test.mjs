// End-to-end tests of `llama2 serve` through the official openai client.
// run.sh starts the server and sets LLAMA2_BASE_URL (http://127.0.0.1:PORT/v1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.LLAMA2_BASE_URL;
assert.ok(baseURL, 'LLAMA2_BASE_URL must be set (run ./run.sh)');
assert.match(baseURL, /^http:\/\/127\.0\.0\.1:\d+\/v1$/, 'loopback only');

const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 30_000 });
const MODEL = 'stories260K';
const opts = { timeout: 30_000 };

test('models.list names the loaded model', opts, async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  assert.equal(models.length, 1);
  assert.equal(models[0].id, MODEL);
  assert.equal(models[0].object, 'model');
  const one = await client.models.retrieve(MODEL);
  assert.equal(one.id, MODEL);
});

test('greedy completion continues the story', opts, async () => {
  const c = await client.completions.create({
    model: MODEL, prompt: 'Once upon a time', max_tokens: 12, temperature: 0,
  });
  assert.equal(c.object, 'text_completion');
  assert.equal(c.model, MODEL);
  assert.match(c.id, /^cmpl-/);
  assert.equal(c.choices.length, 1);
  assert.ok(c.choices[0].text.startsWith(', there was a little girl named Lily'), c.choices[0].text);
  assert.equal(c.choices[0].finish_reason, 'length');
  assert.equal(c.choices[0].logprobs, null);
  const { prompt_tokens_details: details, ...counts } = c.usage;
  assert.deepEqual(counts, { prompt_tokens: 5, completion_tokens: 12, total_tokens: 17 });
  assert.ok(details.cached_tokens >= 0 && details.cached_tokens <= 4, JSON.stringify(details));
});

test('completion with a stop string', opts, async () => {
  const c = await client.completions.create({
    model: MODEL, prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: ['Lily'],
  });
  assert.equal(c.choices[0].text, ', there was a little girl named ');
  assert.equal(c.choices[0].finish_reason, 'stop');
});

test('chat completion', opts, async () => {
  const c = await client.chat.completions.create({
    model: MODEL,
    messages: [
      { role: 'system', content: 'You tell short stories.' },
      { role: 'user', content: 'Tell me about a cat.' },
    ],
    max_tokens: 40, seed: 42, temperature: 0.7,
  });
  assert.equal(c.object, 'chat.completion');
  assert.match(c.id, /^chatcmpl-/);
  const choice = c.choices[0];
  assert.equal(choice.message.role, 'assistant');
  assert.equal(typeof choice.message.content, 'string');
  assert.ok(choice.message.content.length > 0);
  assert.ok(['stop', 'length'].includes(choice.finish_reason));
  assert.ok(c.usage.prompt_tokens > 10);
  assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
});

test('streamed chat completion equals the non-streamed one', opts, async () => {
  const request = {
    model: MODEL,
    messages: [
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi! Once upon a time there was a dog.' },
      { role: 'user', content: 'Go on.' },
    ],
    max_tokens: 60, seed: 7,
  };
  const whole = await client.chat.completions.create(request);
  const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let first = true;
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) { usage = chunk.usage; continue; }
    const choice = chunk.choices[0];
    if (first) { assert.equal(choice.delta.role, 'assistant'); first = false; }
    text += choice.delta.content ?? '';
    if (choice.finish_reason) finish = choice.finish_reason;
    chunks++;
  }
  assert.ok(chunks > 2, 'several chunks');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  const counts = ({ prompt_tokens_details: _, ...c }) => c;
  assert.deepEqual(counts(usage), counts(whole.usage));
  assert.equal(usage.prompt_tokens_details.cached_tokens, usage.prompt_tokens - 1, 'the same prompt again reuses the cache');
});

test('streamed completion with a stop string holds back nothing wrong', opts, async () => {
  const stream = await client.completions.create({
    model: MODEL, prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: 'little', stream: true,
  });
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0].text;
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  assert.equal(text, ', there was a ');
  assert.equal(finish, 'stop');
});

test('a bad request throws APIError 400', opts, async () => {
  await assert.rejects(
    client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], temperature: -1 }),
    (err) => {
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.ok(err instanceof OpenAI.BadRequestError);
      assert.equal(err.status, 400);
      assert.equal(err.type, 'invalid_request_error');
      assert.equal(err.param, 'temperature');
      assert.match(err.message, /temperature must be in/);
      return true;
    },
  );
  await assert.rejects(
    client.completions.create({ model: MODEL, prompt: 'hi', max_tokens: 100000 }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'max_tokens',
  );
  await assert.rejects(client.models.retrieve('gpt-4'), (err) => err instanceof OpenAI.NotFoundError);
});

test('a seeded request gives the same text alone and alongside 7 others', { timeout: 120_000 }, async () => {
  const request = { model: MODEL, prompt: 'The little dog', max_tokens: 48, temperature: 0.9, top_p: 0.95, seed: 4242 };
  const alone = (await client.completions.create(request)).choices[0].text;
  assert.ok(alone.length > 0);
  const others = Array.from({ length: 7 }, (_, i) => client.completions.create({
    model: MODEL, prompt: `Story ${i}: once`, max_tokens: 64, temperature: 1, seed: 100 + i, stream: i % 2 === 0,
  }).then(async (r) => { if (i % 2 === 0) for await (const _ of r); }));
  const together = client.completions.create(request);
  const [r] = await Promise.all([together, ...others]);
  assert.equal(r.choices[0].text, alone);
});

test('GET /metrics is Prometheus text with the serving metrics', opts, async () => {
  const r = await fetch(baseURL.replace(/\/v1$/, '/metrics'));
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain/);
  const body = await r.text();
  for (const name of ['llama2_requests_total', 'llama2_completion_tokens_total', 'llama2_queue_depth', 'llama2_active_slots',
    'llama2_batch_size_bucket', 'llama2_time_to_first_token_seconds_bucket', 'llama2_time_per_output_token_seconds_bucket']) {
    assert.match(body, new RegExp(`^${name}`, 'm'), name);
  }
});

const person = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 12 },
    age: { type: 'integer', minimum: 1, maximum: 99 },
    pets: { type: 'array', items: { enum: ['cat', 'dog'] }, maxItems: 2 },
  },
  required: ['name', 'age', 'pets'],
  additionalProperties: false,
};

test('structured output: a json_schema answer parses into the typed object', opts, async () => {
  for (const seed of [1, 2, 3]) {
    const c = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'Describe Lily.' }], seed, temperature: 1.2, max_tokens: 200,
      response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema: person } },
    });
    assert.equal(c.choices[0].finish_reason, 'stop');
    const p = JSON.parse(c.choices[0].message.content);
    assert.deepEqual(Object.keys(p), ['name', 'age', 'pets']);
    assert.equal(typeof p.name, 'string');
    assert.ok(Number.isInteger(p.age) && p.age >= 1 && p.age <= 99, String(p.age));
    assert.ok(p.pets.length <= 2 && p.pets.every((x) => x === 'cat' || x === 'dog'));
  }
});

test('tool_choice required: a call whose arguments match the parameters', opts, async () => {
  const tools = [{
    type: 'function',
    function: {
      name: 'get_weather', description: 'The weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['C', 'F'] } }, required: ['city', 'unit'], additionalProperties: false },
    },
  }];
  const c = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools, tool_choice: 'required', seed: 7, max_tokens: 100,
  });
  const choice = c.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  const args = JSON.parse(call.function.arguments);
  assert.deepEqual(Object.keys(args), ['city', 'unit']);
  assert.ok(['C', 'F'].includes(args.unit));

  // Streamed: the deltas assemble into the same call.
  const stream = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Weather in Paris?' }], tools, tool_choice: 'required', seed: 7, max_tokens: 100, stream: true,
  });
  let name = '', argsText = '', finish;
  for await (const chunk of stream) {
    for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
      name += tc.function?.name ?? '';
      argsText += tc.function?.arguments ?? '';
    }
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(name, 'get_weather');
  assert.equal(argsText, call.function.arguments);
});

test('logprobs: one entry per token, top_logprobs ordered', opts, async () => {
  const c = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'A story' }], seed: 3, max_tokens: 16, logprobs: true, top_logprobs: 4,
  });
  const entries = c.choices[0].logprobs.content;
  assert.equal(entries.length, c.usage.completion_tokens);
  for (const e of entries) {
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 4);
    assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[3].logprob);
    assert.deepEqual(Buffer.from(e.bytes).toString('utf8'), e.token);
  }
});

test('stream_options.include_usage: the last chunk has the usage', opts, async () => {
  const stream = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 5, stream: true, stream_options: { include_usage: true }, stop: 'zzz',
  });
  let usage;
  for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
  assert.equal(usage.completion_tokens, 5);
});

test('an unsupported schema keyword is a 400 naming it', opts, async () => {
  await assert.rejects(
    client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'hi' }],
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '^a' } } },
    }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === 'response_format.json_schema.schema.pattern' && /pattern/.test(err.message),
  );
});
