#!/usr/bin/env python3
"""A bounded load test of `deepsent serve` on loopback (standard library only).

usage: scripts/serve_load.py --model MODEL.safetensors [--binary PATH] [--out DIR] [--seconds S]

Scenarios, each with ordinary traffic (4 clients posting a real photo in a loop):
  baseline  ordinary traffic alone;
  slow      + 64 clients that send a head announcing 100 bytes, then 1 byte,
            and reconnect whenever the server drops them (slowloris);
  heavy     + 16 clients posting a 5 KB PNG that decodes to 6300 x 6300 pixels
            (under the pixel limit: CPU amplification), in a loop;
  sigterm   a stalled upload open, then SIGTERM: seconds until the process exits.
Reports, per scenario, the ordinary requests' count, non-200 answers, p50 and
p95 latency, and the server's peak resident memory (VmHWM) over the run.
Goals (hardening issue): slow p95 < 2 s, heavy answers every ordinary request,
sigterm within the grace period, peak RSS < 1 GiB.

Writes DIR/serve-load.json and DIR/serve-load.md.
"""
import argparse, http.client, json, os, platform, socket, struct, subprocess, sys, threading, time, zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT.parent / "shared" / "data" / "imagenet_check" / "owl.jpg"


def heavy_png(side=6300):
    """A 1-bit grey PNG of side x side zero pixels: a few KB that decode to side^2 RGB pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    raw = zlib.compress(row * side, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


class Server:
    def __init__(self, binary, model, flags=()):
        self.proc = subprocess.Popen([binary, "serve", "--addr", "127.0.0.1:0", "--model", model, *flags], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        self.host, self.port = line.strip().removeprefix("listening on http://").split(":")
        self.port = int(self.port)

    def peak_rss_mib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def post(server, body, content_type, timeout=60):
    t0 = time.time()
    try:
        c = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
        c.request("POST", "/v1/predict", body=body, headers={"Content-Type": content_type})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, time.time() - t0
    except OSError as e:
        return f"error: {e}", time.time() - t0


def ordinary(server, stop, results, photo):
    while not stop.is_set():
        results.append(post(server, photo, "image/jpeg"))


def slowloris(server, stop):
    while not stop.is_set():
        try:
            s = socket.create_connection((server.host, server.port))
            s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100\r\n\r\nx")
            s.settimeout(0.5)
            while not stop.is_set():
                try:
                    if not s.recv(4096):
                        break
                except socket.timeout:
                    continue
            s.close()
        except OSError:
            time.sleep(0.1)


def heavy(server, stop, png):
    while not stop.is_set():
        post(server, png, "image/png")


def scenario(binary, model, name, seconds, photo):
    server = Server(binary, model)
    time.sleep(1)
    stop, results, threads = threading.Event(), [], []
    if name == "slow":
        threads += [threading.Thread(target=slowloris, args=(server, stop)) for _ in range(64)]
    if name == "heavy":
        png = heavy_png()
        threads += [threading.Thread(target=heavy, args=(server, stop, png)) for _ in range(16)]
    for t in threads:
        t.start()
    time.sleep(1)
    clients = [threading.Thread(target=ordinary, args=(server, stop, results, photo)) for _ in range(4)]
    for t in clients:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in clients + threads:
        t.join()
    rss = server.peak_rss_mib()
    server.stop()
    lat = sorted(l for s, l in results)
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None
    return {"scenario": name, "ordinary_requests": len(results), "not_200": sum(1 for s, _ in results if s != 200),
            "p50_s": pct(0.5), "p95_s": pct(0.95), "peak_rss_mib": rss}


def sigterm(binary, model, grace):
    server = Server(binary, model, ["--grace-s", str(grace), "--body-stall-s", "600"])
    s = socket.create_connection((server.host, server.port))
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\nx")
    time.sleep(0.5)
    t0 = time.time()
    server.proc.terminate()
    server.proc.wait(timeout=120)
    return {"scenario": "sigterm", "grace_s": grace, "exit_s": time.time() - t0, "exit_code": server.proc.returncode}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "deepsent"))
    ap.add_argument("--out", default=str(ROOT / "results" / "serve"))
    ap.add_argument("--seconds", type=float, default=20)
    a = ap.parse_args()
    photo = PHOTO.read_bytes()
    rows = [scenario(a.binary, a.model, n, a.seconds, photo) for n in ["baseline", "slow", "heavy"]]
    rows.append(sigterm(a.binary, a.model, 5))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"command": " ".join(sys.argv), "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}
    (out / "serve-load.json").write_text(json.dumps(meta, indent=2) + "\n")
    md = [f"# `deepsent serve` under load ({meta['date']}, {meta['cores']} cores)\n", f"`{meta['command']}`\n",
          "| scenario | ordinary requests | not 200 | p50 s | p95 s | peak RSS MiB |", "|---|---|---|---|---|---|"]
    for r in rows[:-1]:
        md.append(f"| {r['scenario']} | {r['ordinary_requests']} | {r['not_200']} | {r['p50_s']:.3f} | {r['p95_s']:.3f} | {r['peak_rss_mib']:.0f} |")
    s = rows[-1]
    md.append(f"\nSIGTERM with a stalled upload open: exited after {s['exit_s']:.1f} s (grace {s['grace_s']} s), exit code {s['exit_code']}.\n")
    (out / "serve-load.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
