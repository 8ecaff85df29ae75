/* logview.ts - the /ds4 live log window (spec/lifecycle.md §16).
 *
 * A pi-tui component written without importing pi-tui (the extension has no runtime
 * dependencies): render(width) returns lines no wider than width, handleInput takes raw
 * terminal bytes. The content is the sanitised tail of ds4ctl's log, re-read once per
 * second; while the view follows the end it stays at the bottom, when scrolled up it
 * keeps its distance from the bottom. Pure functions are exported for unit tests. */
import * as fs from "node:fs";

export const TAIL_BYTES = 256 * 1024;
export const MAX_LINES = 2000;

export interface Theme { fg(color: string, text: string): string }
export interface Tui { terminal: { rows: number }; requestRender(): void }

export function humanSize(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** ANSI removed, CRLF and lone CR turned into LF (each curl progress update is a line). */
export function sanitise(text: string): string {
  return text
    .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, "")
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, "")
    .replace(/\x1b[@-_]/g, "")
    .replace(/\r\n/g, "\n")
    .replace(/\r/g, "\n");
}

export function readLogLines(path: string): string[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (e: any) {
    if (e && e.code === "ENOENT") return [`No ds4 log yet: ${path}`];
    return [`Failed to read ${path}: ${e?.message ?? e}`];
  }
  if (!st.isFile()) return [`${path} exists but is not a file`];
  try {
    const start = Math.max(0, st.size - TAIL_BYTES);
    const len = st.size - start;
    const buf = Buffer.alloc(len);
    const fd = fs.openSync(path, "r");
    try { fs.readSync(fd, buf, 0, len, start); } finally { fs.closeSync(fd); }
    let text = sanitise(buf.toString("utf8"));
    const lines: string[] = [];
    if (start > 0) {
      const nl = text.indexOf("\n");
      text = nl >= 0 ? text.slice(nl + 1) : "";
      lines.push(`[showing last ${humanSize(len)} of ${humanSize(st.size)} from ${path}]`);
    }
    const body = text.split("\n");
    if (body.length && body[body.length - 1] === "") body.pop();
    lines.push(...body);
    return lines.slice(-MAX_LINES);
  } catch (e: any) {
    return [`Failed to read ${path}: ${e?.message ?? e}`];
  }
}

function fit(text: string, width: number): string {
  const t = text.replace(/\t/g, "   ").replace(/[\x00-\x1f\x7f]/g, "");
  const chars = Array.from(t);
  if (chars.length > width) return chars.slice(0, Math.max(0, width - 1)).join("") + "…";
  return t + " ".repeat(width - chars.length);
}

export class LogView {
  lines: string[] = [];
  up = 0; // lines scrolled up from the bottom; 0 = live (following)
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private tui: Tui,
    private theme: Theme,
    private done: () => void,
    private logPath: string,
    private read: (p: string) => string[] = readLogLines,
    refreshMs = 1000,
  ) {
    this.refresh();
    if (refreshMs > 0) {
      this.timer = setInterval(() => { this.refresh(); this.tui.requestRender(); }, refreshMs);
      (this.timer as any).unref?.();
    }
  }

  viewport(): number { return Math.min(40, Math.max(8, this.tui.terminal.rows - 6)); }
  bodyHeight(): number { return Math.max(1, this.viewport() - 4); }
  maxUp(): number { return Math.max(0, this.lines.length - this.bodyHeight()); }
  title(): string { return this.up === 0 ? "live" : `${this.up} lines up`; }

  refresh(): void {
    this.lines = this.read(this.logPath);
    this.up = Math.min(this.up, this.maxUp()); // distance from the bottom is kept
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.done();
  }

  dispose(): void { if (this.timer) clearInterval(this.timer); this.timer = null; }

  handleInput(data: string): void {
    const page = Math.max(1, this.bodyHeight() - 2);
    const set = (v: number) => { this.up = Math.min(this.maxUp(), Math.max(0, v)); this.tui.requestRender(); };
    switch (data) {
      case "q": case "\x1b": this.close(); return;
      case "\x1b[A": case "\x1bOA": case "k": set(this.up + 1); return;
      case "\x1b[B": case "\x1bOB": case "j": set(this.up - 1); return;
      case "\x1b[5~": case "b": set(this.up + page); return;
      case "\x1b[6~": case "f": set(this.up - page); return;
      case "\x1b[H": case "\x1bOH": case "\x1b[1~": set(this.maxUp()); return;
      case "\x1b[F": case "\x1bOF": case "\x1b[4~": set(0); return;
      default: return;
    }
  }

  invalidate(): void {}

  render(width: number): string[] {
    const inner = Math.max(1, width - 4);
    const body = this.bodyHeight();
    const end = this.lines.length - this.up;
    const shown = this.lines.slice(Math.max(0, end - body), end);
    while (shown.length < body) shown.unshift(""); // newest line sits at the bottom
    const title = ` ds4 log • ${this.title()} `;
    const tchars = Array.from(title);
    const topFill = Math.max(0, width - 3 - tchars.length);
    const titleText = tchars.length > width - 3 ? tchars.slice(0, Math.max(0, width - 3)).join("") : title;
    const out: string[] = [];
    out.push("╭─" + this.theme.fg("accent", titleText) + "─".repeat(topFill) + "╮");
    for (const l of shown) out.push("│ " + fit(l, inner) + " │");
    const help = `↑↓ scroll • Pg page • End live • q/Esc close • ${this.logPath}`;
    out.push("│ " + this.theme.fg("dim", fit(help, inner)) + " │");
    out.push("╰" + "─".repeat(Math.max(0, width - 2)) + "╯");
    return out;
  }
}
