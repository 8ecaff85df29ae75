#!/usr/bin/env python3
"""Drive `pi --mode rpc` for the ds4 extension test: send N prompts one after the other,
wait for each agent_end, and print one line per prompt: the notify messages seen during
it (JSON list) and the assistant text. usage: pi_rpc_driver.py N -- <pi command...>"""
import json, subprocess, sys, threading, time

n = int(sys.argv[1])
cmd = sys.argv[sys.argv.index("--") + 1:]
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
deadline = time.time() + 90
threading.Timer(90, p.kill).start()

def events():
    for line in p.stdout:
        try: yield json.loads(line)
        except ValueError: continue

it = events()
for i in range(n):
    p.stdin.write(json.dumps({"id": str(i + 1), "type": "prompt", "message": "hello"}) + "\n")
    p.stdin.flush()
    notes, text = [], ""
    for ev in it:
        if ev.get("type") == "extension_ui_request" and ev.get("method") == "notify":
            notes.append(ev.get("message"))
        if ev.get("type") == "agent_end":
            for m in ev.get("messages", []):
                if m.get("role") == "assistant":
                    for c in m.get("content", []):
                        if c.get("type") == "text": text += c.get("text", "")
            break
    print(json.dumps({"notify": notes, "text": text}), flush=True)
p.stdin.close()
p.wait(timeout=30)
sys.exit(0 if time.time() < deadline else 1)
