// sdk_openai.mjs - drives ds4-server (started by test_sdk_openai.sh with
// --test-script script.json) through the real `openai` npm client: chat
// (plain, streaming, tool-call round trip), completions, responses (plain,
// streaming, function-call round trip with previous_response_id), models,
// and SDK-visible errors. Exits non-zero on the first failed check.
import OpenAI from "openai";
import assert from "node:assert/strict";

const client = new OpenAI({ baseURL: `${process.env.BASE}/v1`, apiKey: "dsv4-local", maxRetries: 0 });
const model = "deepseek-v4-flash";
const tools = [{ type: "function", function: { name: "bash", description: "Run a shell command",
  parameters: { type: "object", properties: { command: { type: "string" }, timeout: { type: "number" } }, required: ["command"] } } }];

async function step(name, fn) {
  try { await fn(); console.log(`ok ${name}`); }
  catch (e) { console.error(`FAIL ${name}:`, e); process.exit(1); }
}

await step("models.list", async () => {
  const page = await client.models.list();
  assert.equal(page.data[0].id, model);
  assert.equal(page.data[0].context_length, 4096);
  const m = await client.models.retrieve(model);
  assert.equal(m.id, model);
});

await step("chat non-streaming with reasoning", async () => {
  const r = await client.chat.completions.create({ model, messages: [{ role: "user", content: "hello" }], max_tokens: 64 });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.content, "Hello from ds4.");
  assert.equal(r.choices[0].message.reasoning_content, "Let me think.");
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.completion_tokens + r.usage.prompt_tokens, r.usage.total_tokens);
  // "Let me think." is reasoning; "</think>" and the answer are not.
  const rt = r.usage.completion_tokens_details.reasoning_tokens;
  const tk = await (await fetch(`${process.env.BASE}/tokenize`, { method: "POST", body: JSON.stringify({ content: "Let me think." }) })).json();
  assert.equal(rt, tk.tokens.length);
});

await step("chat non-thinking", async () => {
  const r = await client.chat.completions.create({ model, messages: [{ role: "user", content: "PLAIN" }], max_tokens: 64, thinking: { type: "disabled" } });
  assert.equal(r.choices[0].message.content, "Plain answer without thinking.");
  assert.equal(r.choices[0].message.reasoning_content, undefined);
});

await step("chat streaming with usage", async () => {
  const stream = await client.chat.completions.create({ model, messages: [{ role: "user", content: "hello" }], max_tokens: 64,
    stream: true, stream_options: { include_usage: true } });
  let content = "", reasoning = "", finish = null, usage = null, roles = 0;
  for await (const ch of stream) {
    if (ch.usage) usage = ch.usage;
    const c = ch.choices[0];
    if (!c) continue;
    if (c.delta.role) roles++;
    if (c.delta.content) content += c.delta.content;
    if (c.delta.reasoning_content) reasoning += c.delta.reasoning_content;
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(roles, 1);
  assert.equal(content, "Hello from ds4.");
  assert.equal(reasoning, "Let me think.");
  assert.equal(finish, "stop");
  assert.ok(usage && usage.prompt_tokens > 0);
});

await step("chat tool call round trip (streaming, exact replay reuses the KV)", async () => {
  const messages = [{ role: "user", content: "TOOLTEST: list files" }];
  const stream = await client.chat.completions.create({ model, messages, tools, max_tokens: 200, stream: true,
    stream_options: { include_usage: true } });
  const calls = {};
  let content = "", reasoning = "", finish = null, usage1 = null;
  for await (const ch of stream) {
    if (ch.usage) usage1 = ch.usage;
    const c = ch.choices[0];
    if (!c) continue;
    if (c.delta.content) content += c.delta.content;
    if (c.delta.reasoning_content) reasoning += c.delta.reasoning_content;
    for (const tc of c.delta.tool_calls ?? []) {
      const cur = calls[tc.index] ??= { id: "", name: "", args: "" };
      if (tc.id) { assert.equal(cur.id, "", "id sent twice"); cur.id = tc.id; }
      if (tc.function?.name) cur.name += tc.function.name;
      if (tc.function?.arguments) cur.args += tc.function.arguments;
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(finish, "tool_calls");
  assert.equal(content, "Listing files.");
  assert.equal(reasoning, "I should list the files.");
  assert.equal(Object.keys(calls).length, 1);
  assert.match(calls[0].id, /^call_[0-9a-f]{32}$/);
  assert.equal(calls[0].name, "bash");
  assert.deepEqual(JSON.parse(calls[0].args), { command: 'ls -la && echo "done"', timeout: 30 });
  // Second turn: the client echoes the call (and reasoning) and adds the result.
  messages.push({ role: "assistant", content, reasoning_content: reasoning,
    tool_calls: [{ id: calls[0].id, type: "function", function: { name: "bash", arguments: calls[0].args } }] });
  messages.push({ role: "tool", tool_call_id: calls[0].id, content: "TOOLRESULT-42" });
  const r2 = await client.chat.completions.create({ model, messages, tools, max_tokens: 200 });
  assert.equal(r2.choices[0].message.content, "The directory has 42 files.");
  assert.equal(r2.choices[0].finish_reason, "stop");
  // The live session held turn 1 exactly: everything up to the tool result is cached.
  const first = usage1.prompt_tokens + usage1.completion_tokens;
  assert.ok(r2.usage.prompt_tokens_details.cached_tokens >= first,
    `cached ${r2.usage.prompt_tokens_details.cached_tokens} < first turn ${first}`);
});

await step("chat non-streaming tool call", async () => {
  const r = await client.chat.completions.create({ model, messages: [{ role: "user", content: "TOOLTEST again" }], tools, max_tokens: 200 });
  const m = r.choices[0].message;
  assert.equal(r.choices[0].finish_reason, "tool_calls");
  assert.equal(m.tool_calls.length, 1);
  assert.equal(m.tool_calls[0].function.arguments, '{"command":"ls -la && echo \\"done\\"","timeout":30}');
});

await step("chat stop sequence", async () => {
  const r = await client.chat.completions.create({ model, messages: [{ role: "user", content: "STOPTEST" }], max_tokens: 64,
    thinking: false, stop: ["5"] });
  assert.equal(r.choices[0].message.content, " 3, 4, ");
  assert.equal(r.choices[0].finish_reason, "stop");
});

await step("chat logprobs", async () => {
  const r = await client.chat.completions.create({ model, messages: [{ role: "user", content: "PLAIN" }], max_tokens: 3,
    thinking: false, logprobs: true, top_logprobs: 2 });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, 3);
  for (const e of lp) { assert.ok(e.logprob <= 0); assert.equal(e.top_logprobs.length, 2); }
  assert.equal(r.choices[0].finish_reason, "length");
});

await step("chat streaming logprobs", async () => {
  const s = await client.chat.completions.create({ model, messages: [{ role: "user", content: "PLAIN" }], max_tokens: 5,
    thinking: false, logprobs: true, top_logprobs: 1, stream: true, stream_options: { include_usage: true } });
  let n = 0, text = "", usage = null, bytes = [];
  for await (const ch of s) {
    if (ch.usage) usage = ch.usage;
    const c = ch.choices[0];
    if (!c) continue;
    text += c.delta.content ?? "";
    for (const e of c.logprobs?.content ?? []) { n++; bytes.push(...e.bytes); assert.equal(e.top_logprobs.length, 1); }
  }
  assert.equal(n, usage.completion_tokens);
  assert.equal(Buffer.from(bytes).toString("utf8"), text);
});

await step("completions", async () => {
  const r = await client.completions.create({ model, prompt: "STOPTEST Count: 1, 2,", max_tokens: 20, stop: ["5"], thinking: false });
  assert.equal(r.choices[0].text, " 3, 4, ");
  const s = await client.completions.create({ model, prompt: "STOPTEST Count: 1, 2,", max_tokens: 20, stop: ["5"], thinking: false, stream: true });
  let t = "", fin = null;
  for await (const ch of s) { t += ch.choices[0]?.text ?? ""; fin = ch.choices[0]?.finish_reason ?? fin; }
  assert.equal(t, " 3, 4, ");
  assert.equal(fin, "stop");
});

await step("responses non-streaming, reasoning summary opt-in", async () => {
  const r = await client.responses.create({ model, input: "hello", reasoning: { effort: "high", summary: "auto" } });
  assert.equal(r.status, "completed");
  assert.equal(r.output_text, "Hello from ds4.");
  assert.equal(r.output[0].type, "reasoning");
  assert.equal(r.output[0].summary[0].text, "Let me think.");
});

await step("responses streaming", async () => {
  const s = await client.responses.create({ model, input: "hello", stream: true });
  let text = "", types = [], completed = null;
  for await (const ev of s) {
    types.push(ev.type);
    if (ev.type === "response.output_text.delta") text += ev.delta;
    if (ev.type === "response.completed") completed = ev.response;
  }
  assert.equal(types[0], "response.created");
  assert.equal(text, "Hello from ds4.");
  assert.ok(completed && completed.usage.input_tokens > 0);
  assert.ok(!types.some(t => t.startsWith("response.reasoning")), "hidden reasoning leaked");
});

await step("responses function call round trip with previous_response_id", async () => {
  const rtools = [{ type: "function", name: "bash", description: "Run a shell command",
    parameters: { type: "object", properties: { command: { type: "string" }, timeout: { type: "number" } } } }];
  const s = await client.responses.create({ model, input: "TOOLTEST via responses", tools: rtools, stream: true });
  let done = null;
  const items = [];
  for await (const ev of s) {
    if (ev.type === "response.output_item.done") items.push(ev.item);
    if (ev.type === "response.completed") done = ev.response;
  }
  assert.ok(done);
  const fc = items.find(i => i.type === "function_call");
  assert.ok(fc, "no function_call item");
  assert.equal(fc.name, "bash");
  assert.deepEqual(JSON.parse(fc.arguments), { command: 'ls -la && echo "done"', timeout: 30 });
  const r2 = await client.responses.create({ model, previous_response_id: done.id, tools: rtools,
    input: [{ type: "function_call_output", call_id: fc.call_id, output: "TOOLRESULT-42" }] });
  assert.equal(r2.status, "completed");
  assert.equal(r2.output_text, "The directory has 42 files.");
  assert.ok(r2.usage.input_tokens_details.cached_tokens > 0);
});

await step("responses custom (freeform) tool round trip", async () => {
  const tools = [{ type: "custom", name: "apply_patch", description: "Apply a patch" }];
  const r = await client.responses.create({ model, input: "CUSTOMTEST please", tools });
  const call = r.output.find(i => i.type === "custom_tool_call");
  assert.ok(call, `no custom_tool_call in ${JSON.stringify(r.output)}`);
  assert.equal(call.name, "apply_patch");
  assert.equal(call.input, "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch");
  assert.match(call.id, /^ctc_/);
  const r2 = await client.responses.create({ model, tools, input: [
    { role: "user", content: "CUSTOMTEST please" },
    { type: "custom_tool_call", call_id: call.call_id, name: "apply_patch", input: call.input },
    { type: "custom_tool_call_output", call_id: call.call_id, output: "TOOLRESULT-42" }] });
  assert.equal(r2.output_text, "The directory has 42 files.");
  const s = await client.responses.create({ model, input: "CUSTOMTEST stream", tools, stream: true });
  let delta = "", done = null;
  for await (const ev of s) {
    if (ev.type === "response.custom_tool_call_input.delta") delta += ev.delta;
    if (ev.type === "response.output_item.done" && ev.item.type === "custom_tool_call") done = ev.item;
  }
  assert.equal(delta, call.input);
  assert.equal(done.input, call.input);
});

await step("errors surface as SDK exceptions", async () => {
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: "wizard", content: "x" }] }),
    e => e.status === 400 && /role/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }],
    response_format: { type: "json_object" } }), e => e.status === 400 && /constrained decoding/.test(e.message));
  await assert.rejects(client.responses.create({ model, input: "x", previous_response_id: "resp_unknown" }),
    e => e.status === 400);
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: "user", content: "x".repeat(20000) }] }),
    e => e.status === 400 && e.code === "context_length_exceeded");
});
console.log("all openai checks passed");
