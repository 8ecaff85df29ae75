// sdk_anthropic.mjs - drives ds4-server (started by test_sdk_anthropic.sh
// with --test-script script.json) through the real `@anthropic-ai/sdk`
// client: messages (plain, thinking, streaming), tool_use / tool_result round
// trip, stop_sequences, count_tokens (with ?beta=true like Claude Code), and
// errors in the Anthropic envelope. Exits non-zero on the first failed check.
import Anthropic from "@anthropic-ai/sdk";
import assert from "node:assert/strict";

const client = new Anthropic({ baseURL: process.env.BASE, apiKey: "dsv4-local", maxRetries: 0 });
const model = "deepseek-v4-flash";
const tools = [{ name: "bash", description: "Run a shell command",
  input_schema: { type: "object", properties: { command: { type: "string" }, timeout: { type: "number" } }, required: ["command"] } }];

async function step(name, fn) {
  try { await fn(); console.log(`ok ${name}`); }
  catch (e) { console.error(`FAIL ${name}:`, e); process.exit(1); }
}

await step("messages non-streaming with thinking", async () => {
  const r = await client.messages.create({ model, max_tokens: 64, messages: [{ role: "user", content: "hello" }],
    thinking: { type: "enabled", budget_tokens: 1024 } });
  assert.equal(r.type, "message");
  assert.match(r.id, /^msg_[0-9a-f]{24}$/);
  assert.equal(r.content[0].type, "thinking");
  assert.equal(r.content[0].thinking, "Let me think.");
  assert.equal(r.content[1].type, "text");
  assert.equal(r.content[1].text, "Hello from ds4.");
  assert.equal(r.stop_reason, "end_turn");
  const u = r.usage;
  assert.ok(u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens > 0);
});

await step("messages without thinking, system blocks, x-anthropic header dropped", async () => {
  const r = await client.messages.create({ model, max_tokens: 64, thinking: { type: "disabled" },
    system: [{ type: "text", text: "x-anthropic-billing-header: cch=123;" }, { type: "text", text: "Be terse." }],
    messages: [{ role: "user", content: [{ type: "text", text: "PLAIN" }] }] });
  assert.equal(r.content.length, 1);
  assert.equal(r.content[0].text, "Plain answer without thinking.");
});

await step("messages streaming (SDK accumulator)", async () => {
  const stream = client.messages.stream({ model, max_tokens: 64, messages: [{ role: "user", content: "hello" }] });
  const msg = await stream.finalMessage();
  assert.equal(msg.content[0].type, "thinking");
  assert.equal(msg.content[0].thinking, "Let me think.");
  assert.equal(msg.content[1].text, "Hello from ds4.");
  assert.equal(msg.stop_reason, "end_turn");
  assert.ok(msg.usage.output_tokens > 0);
});

await step("tool_use / tool_result round trip (streaming)", async () => {
  const messages = [{ role: "user", content: "TOOLTEST: list files" }];
  const stream = client.messages.stream({ model, max_tokens: 200, tools, messages });
  const events = [];
  stream.on("streamEvent", e => events.push(e.type));
  const msg = await stream.finalMessage();
  assert.equal(msg.stop_reason, "tool_use");
  const tu = msg.content.find(b => b.type === "tool_use");
  assert.ok(tu, "no tool_use block");
  assert.match(tu.id, /^toolu_[0-9a-f]{32}$/);
  assert.equal(tu.name, "bash");
  assert.deepEqual(tu.input, { command: 'ls -la && echo "done"', timeout: 30 });
  assert.equal(events[0], "message_start");
  assert.equal(events.at(-1), "message_stop");
  messages.push({ role: "assistant", content: msg.content });
  messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: tu.id, content: "TOOLRESULT-42" }] });
  const r2 = await client.messages.create({ model, max_tokens: 200, tools, messages });
  assert.equal(r2.stop_reason, "end_turn");
  assert.equal(r2.content.find(b => b.type === "text").text, "The directory has 42 files.");
  assert.ok(r2.usage.cache_read_input_tokens > 0, "second turn reused nothing");
});

await step("stop_sequences report the matched string", async () => {
  const r = await client.messages.create({ model, max_tokens: 64, thinking: { type: "disabled" }, stop_sequences: ["5"],
    messages: [{ role: "user", content: "STOPTEST" }] });
  assert.equal(r.content[0].text, " 3, 4, ");
  assert.equal(r.stop_reason, "stop_sequence");
  assert.equal(r.stop_sequence, "5");
});

await step("count_tokens", async () => {
  const body = { model, messages: [{ role: "user", content: "hello" }] };
  const a = await client.messages.countTokens(body);
  const b = await client.beta.messages.countTokens(body);   // ?beta=true
  assert.ok(a.input_tokens > 0);
  assert.equal(a.input_tokens, b.input_tokens);
  const r = await client.messages.create({ ...body, max_tokens: 8 });
  assert.equal(r.usage.input_tokens + r.usage.cache_read_input_tokens + r.usage.cache_creation_input_tokens, a.input_tokens);
});

await step("errors use the Anthropic envelope", async () => {
  await assert.rejects(client.messages.create({ model, max_tokens: 8, messages: [] }),
    e => e.status === 400 && e.error?.type === "error" && e.error?.error?.type === "invalid_request_error");
  await assert.rejects(client.messages.create({ model, max_tokens: 8, messages: [{ role: "user", content: "x".repeat(20000) }] }),
    e => e.status === 400 && e.error?.error?.n_ctx === 4096);
});
console.log("all anthropic checks passed");
