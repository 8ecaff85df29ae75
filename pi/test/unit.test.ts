/* unit.test.ts - unit tests of the pi extension without pi (spec §21.16 scenarios 1
 * and 13): the provider definition registered through a stub API, and the /ds4 log
 * window driven with a stub tui/theme and raw key strings. Run with jiti:
 *   node_modules/.bin/jiti pi/test/unit.test.ts     (exit 0 = all passed) */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import ext from "../index.ts";
import { LogView, readLogLines, sanitise } from "../logview.ts";

let failed = 0, passed = 0;
function check(name: string, cond: boolean, detail = "") {
  if (cond) passed++;
  else { failed++; console.log(`FAIL ${name}${detail ? ": " + detail : ""}`); }
}

// --- registration ---
const providers: Record<string, any> = {};
const commands: Record<string, any> = {};
const hooks: Record<string, any[]> = {};
ext({
  registerProvider: (id: string, cfg: any) => { providers[id] = cfg; },
  registerCommand: (name: string, cfg: any) => { commands[name] = cfg; },
  on: (ev: string, fn: any) => { (hooks[ev] ||= []).push(fn); },
});
const p = providers["ds4"];
check("provider registered", !!p);
check("provider name", p?.name === "ds4.c local");
check("base url", p?.baseUrl === "http://127.0.0.1:8000/v1" || !!process.env.DS4_PORT, p?.baseUrl);
check("api", p?.api === "openai-completions");
check("api key", p?.apiKey === "dsv4-local");
const m = p?.models?.[0];
check("model id", m?.id === "deepseek-v4-flash");
check("context window", m?.contextWindow === (Number(process.env.DS4_CTX) || 100000));
check("max tokens", m?.maxTokens === 384000);
check("thinking map", JSON.stringify(m?.thinkingLevelMap) ===
  JSON.stringify({ minimal: "low", low: "low", medium: "medium", high: "high", xhigh: "xhigh" }));
check("compat on the model", m?.compat?.maxTokensField === "max_tokens" && m?.compat?.thinkingFormat === "deepseek"
  && m?.compat?.supportsStore === false);
check("no provider-level compat", p?.compat === undefined);
check("cost zero", JSON.stringify(m?.cost) === JSON.stringify({ input: 0, output: 0, cacheRead: 0, cacheWrite: 0 }));
check("/ds4 command", commands["ds4"]?.description === "Show the live ds4-server log");
check("hooks", !!hooks["before_provider_request"] && !!hooks["session_shutdown"]);

// a request to another model is ignored without running ds4ctl
const other = await hooks["before_provider_request"][0]({ payload: {} }, { model: { provider: "openai", id: "gpt" } });
check("other model untouched", other === undefined);

// --- log window ---
check("sanitise", sanitise("a\x1b[31mred\x1b[0m\r\nb\rc") === "ared\nb\nc");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ds4-logview-"));
const log = path.join(dir, "log");
check("missing log", readLogLines(log)[0] === `No ds4 log yet: ${log}`);
fs.writeFileSync(log, Array.from({ length: 50 }, (_, i) => `line ${i + 1}`).join("\n") + "\n");
let renders = 0, closed = 0;
const tui = { terminal: { rows: 20 }, requestRender: () => { renders++; } };
const theme = { fg: (_c: string, t: string) => t };
const v = new LogView(tui, theme, () => { closed++; }, log, readLogLines, 0);
const W = 70;
let out = v.render(W);
check("title live", out[0].includes("ds4 log • live"), out[0]);
check("widths", out.every((l) => Array.from(l).length === W), out.map((l) => Array.from(l).length).join(","));
check("height", out.length === (20 - 6 - 4) + 3, String(out.length));
check("newest at bottom", out[out.length - 3].includes("line 50"), out[out.length - 3]);
v.handleInput("\x1b[A"); v.handleInput("k"); v.handleInput("x");
check("two lines up", v.render(W)[0].includes("ds4 log • 2 lines up"));
v.handleInput("\x1b[5~"); // page = body - 2 = 8
check("page up", v.up === 10, String(v.up));
v.handleInput("b"); v.handleInput("j");
check("page + down", v.up === 17, String(v.up));
v.handleInput("\x1b[H");
check("home = oldest", v.up === 50 - 10 && v.render(W)[1].includes("line 1 "), String(v.up));
// following keeps the distance from the bottom while the log grows
fs.appendFileSync(log, "line 51\n");
v.refresh();
check("scrolled position kept", v.up === 40, String(v.up));
v.handleInput("\x1b[F");
check("end = live", v.up === 0 && v.render(W)[0].includes("live"));
fs.appendFileSync(log, "line 52\n");
v.refresh();
check("live follows", v.render(W).some((l) => l.includes("line 52")));
v.handleInput("q");
check("q closes", closed === 1);
const v2 = new LogView(tui, theme, () => { closed++; }, log, readLogLines, 0);
v2.handleInput("\x1b");
check("Esc closes", closed === 2);
// long log: tail with the "showing last" header
fs.writeFileSync(log, "x".repeat(300 * 1024) + "\nlast line\n");
const big = readLogLines(log);
check("tail header", big[0].startsWith("[showing last 256.0 KB of 300.0 KB from"), big[0]);
check("tail last", big[big.length - 1] === "last line");
fs.rmSync(dir, { recursive: true });

console.log(`# pi unit: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
