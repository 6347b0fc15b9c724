#!/usr/bin/env python3
"""Hotdata's upload control plane in front of a real S3 implementation, for the storage tests
(tests/conformance/tests/real_storage.rs).

It starts s3s-fs (an S3 server that checks every request's AWS Signature V4, presigned
URLs included) on 127.0.0.1, and serves the three upload operations the SDK calls:
create a session (POST /v1/uploads), mint part URLs (POST /v1/uploads/{id}/parts) and
finalize (POST /v1/uploads/{id}/finalize). Every storage URL is presigned by botocore, and
finalize completes the multipart upload in S3 with the ETags the SDK sends: what S3 stored
and signed is judged by S3's rules, not ours.

Test-only routes:
  POST /_test/next   {"mode": "single"|"eager"|"minted", "part_size": N, "headers": {..},
                      "break_part": N, "break_times": K}  how the sessions from now on
                      are answered (what is not given: DEFAULT_PLAN)
                      (the first K URLs given for part N carry a wrong signature; eager
                      is answered only when the SDK declares the size, else minted)
  POST /_test/heal   every session's URLs are signed right from now on
  GET  /_test/object/{upload_id}   the stored object's bytes (404 until finalized), its
                                   Content-Type in the answer's Content-Type

Usage: control.py S3S_FS_BINARY. Prints "listening on 127.0.0.1:PORT" once both servers
answer. Exits when its standard input closes (the test process ended) or after 10 minutes.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore.config

BUCKET = "hotdata-storage-test"
ACCESS_KEY = "HOTDATATESTKEY"
SECRET_KEY = "hotdata-test-secret-key"
MAX_SECONDS = 600
# How a session is answered when /_test/next says nothing else.
DEFAULT_PLAN = {"mode": "minted", "part_size": 5 << 20, "headers": {}, "break_part": None, "break_times": 1}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, deadline):
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class State:
    def __init__(self, s3):
        self.s3 = s3
        self.lock = threading.Lock()
        self.next = dict(DEFAULT_PLAN)
        self.sessions = {}

    def presign(self, session, number):
        if session["mode"] == "single":
            params = {"Bucket": BUCKET, "Key": session["key"]}
            if "Content-Type" in session["headers"]:
                params["ContentType"] = session["headers"]["Content-Type"]
            url = self.s3.generate_presigned_url("put_object", Params=params, ExpiresIn=600)
        else:
            url = self.s3.generate_presigned_url(
                "upload_part",
                Params={"Bucket": BUCKET, "Key": session["key"], "UploadId": session["s3_upload"],
                        "PartNumber": number},
                ExpiresIn=600,
            )
        if session["break_part"] == number and session["broken"] < session["break_times"]:
            session["broken"] += 1
            # The same URL with the signature's last hex digit changed.
            url = re.sub(r"(X-Amz-Signature=[0-9a-f]*)([0-9a-f])$",
                         lambda m: m.group(1) + ("0" if m.group(2) != "0" else "1"), url)
        return url


def handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body, content_type="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, code, message):
            self.answer(status, {"error": {"code": code, "message": message}})

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            return json.loads(raw) if raw else {}

        def do_GET(self):
            m = re.fullmatch(r"/_test/object/([^/]+)", self.path)
            if m:
                session = state.sessions.get(m.group(1))
                if not session or not session.get("finalized"):
                    return self.error(404, "NOT_FOUND", "no finalized upload")
                obj = state.s3.get_object(Bucket=BUCKET, Key=session["key"])
                return self.answer(200, obj["Body"].read(), obj.get("ContentType") or "none")
            self.error(404, "NOT_FOUND", self.path)

        def do_POST(self):
            body = self.body()
            if self.path == "/_test/next":
                with state.lock:
                    state.next = {**DEFAULT_PLAN, **body}
                return self.answer(200, state.next)
            if self.path == "/_test/heal":
                with state.lock:
                    for session in state.sessions.values():
                        session["break_times"] = 0
                return self.answer(200, {})
            if self.path == "/v1/uploads":
                return self.create(body)
            m = re.fullmatch(r"/v1/uploads/([^/]+)/(parts|finalize)", self.path)
            session = m and state.sessions.get(m.group(1))
            if not session:
                return self.error(404, "NOT_FOUND", "no such upload")
            if m.group(2) == "parts":
                with state.lock:
                    parts = [{"part_number": n, "url": state.presign(session, n)} for n in body["part_numbers"]]
                return self.answer(200, {"parts": parts})
            return self.finalize(session, body)

        def create(self, body):
            with state.lock:
                plan = dict(state.next)
            upload_id = "upl_" + uuid.uuid4().hex[:12]
            session = {"key": upload_id, "mode": plan["mode"], "headers": plan.get("headers") or {},
                       "break_part": plan.get("break_part"), "break_times": plan.get("break_times", 1),
                       "broken": 0, "finalized": False}
            if plan["mode"] == "single" and body.get("declared_size_bytes") is None:
                return self.error(400, "SIZE_REQUIRED", "a single PUT needs declared_size_bytes")
            answer = {"upload_id": upload_id, "finalize_token": "tok_" + upload_id,
                      "headers": session["headers"]}
            if plan["mode"] == "single":
                answer.update(mode="single", url=state.presign(session, 1))
            else:
                size = body.get("declared_size_bytes")
                part_size = plan["part_size"]
                session["s3_upload"] = state.s3.create_multipart_upload(Bucket=BUCKET, Key=upload_id)["UploadId"]
                answer.update(mode="multipart", part_size=part_size)
                if plan["mode"] == "eager" and size is not None:
                    count = max(1, -(-size // part_size))
                    answer["part_urls"] = [state.presign(session, n) for n in range(1, count + 1)]
            state.sessions[upload_id] = session
            self.answer(201, answer)

        def finalize(self, session, body):
            if self.headers.get("X-Upload-Finalize-Token") != "tok_" + session["key"]:
                return self.error(403, "BAD_TOKEN", "wrong finalize token")
            if session["finalized"]:
                return self.error(409, "ALREADY_FINALIZED", "already finalized")
            try:
                if session["mode"] != "single":
                    parts = [{"PartNumber": p["part_number"], "ETag": p["e_tag"]} for p in body.get("parts", [])]
                    state.s3.complete_multipart_upload(
                        Bucket=BUCKET, Key=session["key"], UploadId=session["s3_upload"],
                        MultipartUpload={"Parts": parts})
                head = state.s3.head_object(Bucket=BUCKET, Key=session["key"])
            except Exception as e:  # S3 refused: say why, as the API would
                return self.error(400, "STORAGE_REFUSED", str(e))
            session["finalized"] = True
            self.answer(200, {"upload_id": session["key"], "status": "finalized",
                              "size_bytes": head["ContentLength"], "created_at": "2026-01-01T00:00:00Z",
                              "content_type": head.get("ContentType")})

    return Handler


def main():
    binary = sys.argv[1]
    root = tempfile.mkdtemp(prefix="hotdata-s3-")
    os.mkdir(os.path.join(root, BUCKET))
    deadline = time.time() + 30
    s3_port = free_port()
    s3s = subprocess.Popen(
        [binary, "--host", "127.0.0.1", "--port", str(s3_port), "--access-key", ACCESS_KEY,
         "--secret-key", SECRET_KEY, root],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_for(s3_port, deadline):
            sys.exit("s3s-fs did not listen")
        s3 = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler(State(s3)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
        # Stop when the test process closes our stdin (or dies), or after MAX_SECONDS.
        stopper = threading.Thread(target=lambda: sys.stdin.read(), daemon=True)
        stopper.start()
        stopper.join(MAX_SECONDS)
    finally:
        s3s.kill()
        s3s.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
