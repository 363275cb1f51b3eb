#!/usr/bin/python3
"""The design vigil replaces, for bench/http_bench.sh: FastAPI + uvicorn + PyTorch serving the
same TorchScript model with the same /predict request and response shapes.

    /usr/bin/python3 bench/fastapi_baseline.py --port 8000 [--workers 2] [--style sync-h11]

Written the way such a service is deployed: a pydantic model validates the body, and one forward
pass per request runs under torch.inference_mode(), one LibTorch thread per worker process (like
vigil's scoring workers), TCP_NODELAY on every connection. Two styles:
  deployed  (default) uvicorn with its standard extras, the httptools parser and the uvloop
            event loop (Debian python3-httptools, python3-uvloop), and an async endpoint:
            how FastAPI's own docs and uvicorn[standard] run it
  sync-h11  the pure-Python h11 parser, asyncio's loop and a sync endpoint (run by FastAPI in
            its thread pool): slower, kept as an extra row
Use the Debian python (/usr/bin/python3): it has fastapi, uvicorn, httptools, uvloop and torch.
"""
import argparse
import os
import sys
from typing import List, Optional, Union

import socket

import torch
import uvicorn
import yaml
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_model(repository: str, name: str):
    with open(os.path.join(repository, name, "model.yaml")) as f:
        spec = yaml.safe_load(f)
    versions = sorted(int(v) for v in os.listdir(os.path.join(repository, name))
                      if v.isdigit() and os.path.exists(os.path.join(repository, name, v, "model.pt")))
    version = str(versions[-1])
    module = torch.jit.load(os.path.join(repository, name, version, "model.pt"), map_location="cpu")
    module.eval()
    return spec, version, module


def set_nodelay(transport) -> None:
    """TCP_NODELAY on an accepted connection. uvicorn does not set it, and with --workers > 1
    the accepted sockets come without it: Nagle + delayed ACK then add ~40 ms to every
    keep-alive response, an artefact we do not want to measure."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport):
        set_nodelay(transport)
        super().connection_made(transport)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport):
        set_nodelay(transport)
        super().connection_made(transport)


STYLES = {  # style: (uvicorn http protocol, event loop, async endpoint)
    "deployed": (NoDelayHttpToolsProtocol, "uvloop", True),
    "sync-h11": (NoDelayH11Protocol, "asyncio", False),
}


class PredictRequest(BaseModel):
    instances: List[Union[List[float], dict]]


def create_app(repository: str, name: str, style: str) -> FastAPI:
    torch.set_num_threads(1)
    spec, version, module = load_model(repository, name)
    inputs: List[str] = list(spec["inputs"])
    threshold = float(spec.get("threshold", 0.5))
    width = len(inputs)
    app = FastAPI(title="fastapi-baseline")

    def row_of(i: int, instance) -> (List[float], Optional[str]):
        if isinstance(instance, list):
            if len(instance) != width:
                raise HTTPException(422, f"instances[{i}] must have {width} values")
            return instance, None
        tid = instance.get("transaction_id")
        try:
            return [float(instance[n]) for n in inputs], tid
        except (KeyError, TypeError, ValueError) as e:
            raise HTTPException(422, f"instances[{i}]: bad or missing feature {e}")

    def predict(req: PredictRequest):
        rows, ids = [], []
        for i, inst in enumerate(req.instances):
            r, tid = row_of(i, inst)
            rows.append(r)
            ids.append(tid)
        with torch.inference_mode():
            scores = module(torch.tensor(rows, dtype=torch.float32)).reshape(-1).tolist()
        out = []
        for s, tid in zip(scores, ids):
            p = {"score": s, "is_fraud": s >= threshold}
            if tid is not None:
                p["transaction_id"] = tid
            out.append(p)
        return {"predictions": out, "model_name": name, "model_version": version}

    if STYLES[style][2]:
        @app.post("/predict")
        async def predict_async(req: PredictRequest):
            return predict(req)
    else:
        app.post("/predict")(predict)

    @app.get("/health")
    def health():
        return {"status": "ok"}

    return app


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--repository", default=os.path.join(ROOT, "models"))
    ap.add_argument("--model", default="fraud_mlp")
    ap.add_argument("--style", choices=sorted(STYLES), default="deployed")
    args = ap.parse_args()
    os.environ["VIGIL_BASELINE_REPOSITORY"] = args.repository
    os.environ["VIGIL_BASELINE_MODEL"] = args.model
    os.environ["VIGIL_BASELINE_STYLE"] = args.style
    http, loop, _ = STYLES[args.style]
    common = dict(host=args.host, port=args.port, http=http, loop=loop, log_level="warning",
                  access_log=False)
    if args.workers > 1:
        # Worker processes import the app by name and build it from the environment.
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        uvicorn.run("fastapi_baseline:app_from_env", factory=True, workers=args.workers, **common)
    else:
        uvicorn.run(create_app(args.repository, args.model, args.style), **common)
    return 0


def app_from_env() -> FastAPI:
    return create_app(os.environ["VIGIL_BASELINE_REPOSITORY"], os.environ["VIGIL_BASELINE_MODEL"],
                      os.environ["VIGIL_BASELINE_STYLE"])


if __name__ == "__main__":
    sys.exit(main())
