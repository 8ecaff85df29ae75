/* index.ts - the ds4 pi extension (spec/lifecycle.md §21.15): thin on purpose.
 *
 * It registers the `ds4` provider and the /ds4 log window, and before each request to
 * ds4/deepseek-v4-flash runs `ds4ctl ensure`, which owns every lifecycle decision
 * (lock, lease, watchdog, download, spawn, readiness). Here there are no file formats
 * and no process logic: only spawning ds4ctl, turning its JSON-lines events into
 * notifications, a lease heartbeat, and releasing the lease when pi quits.
 *
 * State that must survive /reload, /new, /resume and /fork (the in-flight ensure, the
 * heartbeat) lives on globalThis under a Symbol.for key, so a re-created extension
 * instance in the same process adopts it instead of losing the lease (Part A's defect,
 * §15.5). On failure the turn is aborted with ctx.abort() instead of throwing, so pi
 * does not send the request anyway and retry the hook three more times. */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { LogView } from "./logview.ts";

const PROVIDER = "ds4";
const MODEL = "deepseek-v4-flash";

function extensionDir(): string {
  // Real path: the local install links ~/.pi/agent/extensions/pi-ds4 to this folder,
  // and ds4ctl is looked up next to the repository, not next to the link.
  try { return fs.realpathSync(path.dirname(fileURLToPath(import.meta.url))); } catch { return process.cwd(); }
}

export function stateDir(env = process.env): string {
  return env.DS4_HOME && env.DS4_HOME.length ? env.DS4_HOME : path.join(os.homedir(), ".pi", "ds4");
}

export function baseUrl(env = process.env): string {
  return `http://${env.DS4_HOST || "127.0.0.1"}:${env.DS4_PORT || "8000"}/v1`;
}

export function contextWindow(env = process.env): number {
  const n = Number(env.DS4_CTX);
  return Number.isInteger(n) && n > 0 ? n : 100000;
}

export function providerConfig(env = process.env) {
  const compat = {
    supportsStore: false,
    supportsDeveloperRole: false,
    supportsReasoningEffort: true,
    supportsUsageInStreaming: true,
    maxTokensField: "max_tokens",
    supportsStrictMode: false,
    thinkingFormat: "deepseek",
    requiresReasoningContentOnAssistantMessages: true,
  };
  return {
    name: "ds4.c local",
    baseUrl: baseUrl(env),
    apiKey: "dsv4-local",
    api: "openai-completions",
    models: [{
      id: MODEL,
      name: "DeepSeek V4 Flash (ds4.c local)",
      reasoning: true,
      thinkingLevelMap: { minimal: "low", low: "low", medium: "medium", high: "high", xhigh: "xhigh" },
      input: ["text"],
      cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
      contextWindow: contextWindow(env),
      maxTokens: 384000,
      // pi 0.73 honours compat only on the model (provider-level compat is dropped).
      compat,
    }],
  };
}

/* ---- locating ds4ctl ---- */

function executable(p: string): boolean {
  try { fs.accessSync(p, fs.constants.X_OK); return fs.statSync(p).isFile(); } catch { return false; }
}

export function findDs4ctl(env = process.env, dir = extensionDir()): string | null {
  if (env.DS4CTL) return env.DS4CTL;
  const candidates = [path.join(dir, "bin", "ds4ctl"), path.join(dir, "..", "ds4ctl")];
  for (const d of (env.PATH || "").split(path.delimiter)) if (d) candidates.push(path.join(d, "ds4ctl"));
  for (const c of candidates) if (executable(c)) return path.resolve(c);
  return null;
}

/* ---- process-global state ---- */

interface Shared {
  inflight: Promise<void> | null;
  child: ChildProcess | null;
  heartbeat: ReturnType<typeof setInterval> | null;
  leaseBusy: boolean;
  ctl: string | null;
}
const KEY = Symbol.for("ds4.pi-extension.state");
function shared(): Shared {
  const g = globalThis as any;
  if (!g[KEY]) g[KEY] = { inflight: null, child: null, heartbeat: null, leaseBusy: false, ctl: null } as Shared;
  return g[KEY];
}

type Notify = (msg: string, level: "info" | "warning" | "error") => void;

async function ds4ctlPath(notify: Notify): Promise<string> {
  const s = shared();
  if (s.ctl && executable(s.ctl)) return s.ctl;
  let ctl = findDs4ctl();
  if (!ctl) {
    // An installed repository checkout: build ds4ctl once with the project's Makefile.
    const root = path.join(extensionDir(), "..");
    if (fs.existsSync(path.join(root, "Makefile")) && fs.existsSync(path.join(root, "src", "bin", "ds4ctl.c"))) {
      notify("building ds4ctl", "info");
      const logPath = path.join(stateDir(), "log");
      fs.mkdirSync(stateDir(), { recursive: true });
      const out = fs.openSync(logPath, "a");
      const code = await new Promise<number>((resolve) => {
        const p = spawn("make", ["-C", root, "ds4ctl"], { stdio: ["ignore", out, out] });
        p.on("error", () => resolve(127));
        p.on("exit", (c) => resolve(c ?? 1));
      });
      fs.closeSync(out);
      if (code === 0) ctl = findDs4ctl();
    }
  }
  if (!ctl) throw new Error(`ds4ctl not found; set DS4CTL or build it with make -C ${path.join(extensionDir(), "..")} ds4ctl`);
  s.ctl = ctl;
  return ctl;
}

/* ---- ensure ---- */

const PREFIX: Record<string, string> = {
  clone: "cloning ds4 support checkout",
  checkout: "cloning ds4 support checkout",
  build: "building ds4-server",
  download: "downloading q2 model",
  verify: "verifying q2 model",
};

async function runEnsure(notify: Notify): Promise<void> {
  const ctl = await ds4ctlPath(notify);
  const s = shared();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(ctl, ["--events", "jsonl", "ensure", "--client-pid", String(process.pid)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    s.child = child;
    let buf = "", lastMsg = "", lastProgress = 0, waitingShown = false, errorMsg = "", lastStderr = "";
    let pendingProgress: string | null = null;
    const handle = (line: string) => {
      let ev: any;
      try { ev = JSON.parse(line); } catch { return; }
      if (ev.type === "status") {
        if (ev.message !== lastMsg && !/^ds4-server starting \(\d+s\)$/.test(ev.message)) notify(ev.message, "info");
        lastMsg = ev.message;
      } else if (ev.type === "progress") {
        const text = `${PREFIX[ev.phase] ?? ev.phase}: ${ev.message}`.slice(0, 160);
        const now = Date.now();
        if (now - lastProgress >= 750) { notify(text, "info"); lastProgress = now; pendingProgress = null; }
        else pendingProgress = text;
      } else if (ev.type === "waiting") {
        if (!waitingShown) notify(`waiting for ds4 setup in pi process ${ev.holderPid}`, "info");
        waitingShown = true;
      } else if (ev.type === "ready") {
        if (pendingProgress) notify(pendingProgress, "info");
        if (!ev.alreadyRunning) notify("ds4-server ready", "info");
      } else if (ev.type === "error") {
        errorMsg = ev.message;
      }
    };
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) { handle(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (d: string) => {
      const ls = d.split("\n").map((l) => l.trim()).filter(Boolean);
      if (ls.length) lastStderr = ls[ls.length - 1];
    });
    child.on("error", (e) => { s.child = null; reject(e); });
    child.on("close", (code, signal) => {
      s.child = null;
      if (buf.trim()) handle(buf.trim());
      if (code === 0) resolve();
      else reject(new Error(errorMsg || lastStderr || (signal ? `ds4ctl killed by ${signal}` : `ds4ctl exited with code ${code}`)));
    });
  });
}

function ensure(notify: Notify): Promise<void> {
  const s = shared();
  if (!s.inflight) {
    s.inflight = runEnsure(notify).finally(() => { s.inflight = null; });
  }
  return s.inflight.then(() => startHeartbeat());
}

/** Lease refresh period: 10 s (the lease TTL is 45 s); DS4_HEARTBEAT_S only for tests. */
function heartbeatMs(): number {
  const n = Number(process.env.DS4_HEARTBEAT_S);
  return Number.isFinite(n) && n > 0 ? n * 1000 : 10000;
}

function startHeartbeat(): void {
  const s = shared();
  if (s.heartbeat) return;
  s.heartbeat = setInterval(() => {
    if (s.leaseBusy || !s.ctl) return;
    s.leaseBusy = true;
    const p = spawn(s.ctl, ["lease", "--client-pid", String(process.pid)], { stdio: "ignore" });
    p.on("error", () => { s.leaseBusy = false; });
    p.on("close", () => { s.leaseBusy = false; });
  }, heartbeatMs());
  (s.heartbeat as any).unref?.();
}

async function release(): Promise<void> {
  const s = shared();
  if (s.heartbeat) clearInterval(s.heartbeat);
  s.heartbeat = null;
  if (s.child && s.child.exitCode === null) s.child.kill("SIGTERM"); // ds4ctl keeps .part files
  const ctl = s.ctl; // set once an ensure ran; a pi that never used ds4 has no lease
  if (!ctl) return;
  await new Promise<void>((resolve) => {
    const p = spawn(ctl, ["release", "--client-pid", String(process.pid)], { stdio: "ignore" });
    const t = setTimeout(() => { p.kill("SIGKILL"); resolve(); }, 2000);
    p.on("error", () => { clearTimeout(t); resolve(); });
    p.on("close", () => { clearTimeout(t); resolve(); });
  });
}

/* ---- the extension ---- */

export default function ds4Extension(pi: any) {
  pi.registerProvider(PROVIDER, providerConfig());

  pi.registerCommand("ds4", {
    description: "Show the live ds4-server log",
    handler: async (_args: string, ctx: any) => {
      const logPath = path.join(stateDir(), "log");
      if (!ctx.hasUI) { ctx.ui?.notify?.(`ds4 log: ${logPath}`, "info"); return; }
      let view: LogView | null = null;
      await ctx.ui.custom(
        (tui: any, theme: any, _kb: any, done: (v?: unknown) => void) => {
          view = new LogView(tui, theme, () => done(undefined), logPath);
          return view;
        },
        { overlay: true, overlayOptions: { width: "90%", minWidth: 60, maxHeight: "85%", anchor: "center", margin: 1 } },
      );
      (view as LogView | null)?.dispose();
    },
  });

  pi.on("before_provider_request", async (_event: any, ctx: any) => {
    if (ctx?.model?.provider !== PROVIDER || ctx?.model?.id !== MODEL) return undefined;
    const notify: Notify = (msg, level) => { try { ctx.ui?.notify?.(msg, level); } catch { /* no UI */ } };
    try {
      await ensure(notify);
    } catch (e: any) {
      const msg = e?.message ?? String(e);
      notify(`ds4-server startup failed: ${msg}`, "error");
      if (!ctx.hasUI) process.stderr.write(`ds4-server startup failed: ${msg}\n`);
      ctx.abort?.();
    }
    return undefined;
  });

  pi.on("session_shutdown", async (event: any, _ctx: any) => {
    if (event?.reason !== "quit") return; // reload/new/resume/fork: lease and heartbeat live on
    await release();
  });

  if (process.env.DS4_PREWARM === "1") {
    pi.on("model_select", (event: any, ctx: any) => {
      if (event?.model?.provider === PROVIDER && event?.model?.id === MODEL) {
        ensure((m, l) => { try { ctx.ui?.notify?.(m, l); } catch { /* no UI */ } }).catch(() => {});
      }
    });
  }
}
