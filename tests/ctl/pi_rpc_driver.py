#!/usr/bin/env python3
"""Drive `pi --mode rpc` for the ds4 extension tests.

usage: pi_rpc_driver.py ACTION... -- <pi command...>
Actions, run in order:
  prompt        send a prompt, wait for agent_end, print {"notify": [...], "text": "..."}
  new           send new_session (a session switch: the extension instance is re-created)
  sleep=N       wait N seconds
  cmd=SHELL     run a shell command, print {"cmd": "<its stdout>"}
A hard limit of 120 s kills pi so a hung run cannot stall the suite."""
import json, subprocess, sys, threading, time

sep = sys.argv.index("--")
actions, cmd = sys.argv[1:sep], sys.argv[sep + 1:]
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
timer = threading.Timer(120, p.kill); timer.start()

def events():
    for line in p.stdout:
        try: yield json.loads(line)
        except ValueError: continue
it = events()

def send(obj):
    p.stdin.write(json.dumps(obj) + "\n"); p.stdin.flush()

n = 0
for a in actions:
    n += 1
    if a == "prompt":
        send({"id": str(n), "type": "prompt", "message": "hello"})
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
    elif a == "new":
        send({"id": str(n), "type": "new_session"})
        for ev in it:
            if ev.get("type") == "response" and ev.get("command") == "new_session": break
    elif a.startswith("sleep="):
        time.sleep(float(a[6:]))
    elif a.startswith("cmd="):
        out = subprocess.run(a[4:], shell=True, capture_output=True, text=True).stdout.strip()
        print(json.dumps({"cmd": out}), flush=True)
p.stdin.close()
try: p.wait(timeout=30)
finally: timer.cancel()
