"""An OpenAI-compatible endpoint for tests of ``--synth openai``, run as its own process
(``python tests/openai_stub.py PORT [FORWARD_URL]``), so a test can kill it mid-call.

``POST /v1/chat/completions`` forwards to ``FORWARD_URL`` (another swarm's front door) or,
without one, answers with the question echoed; ``POST /_mode`` switches it to answer with an
HTTP status (``{"status": 500}``), after a delay (``{"sleep_s": 5}``), or back (``{}``).
It counts the calls it took (``GET /_calls``).
"""

from __future__ import annotations

import asyncio
import sys

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
state: dict = {"status": None, "sleep_s": 0.0, "calls": 0, "forward": None}


@app.post("/_mode")
async def mode(request: Request) -> dict:
    body = await request.json()
    state["status"], state["sleep_s"] = body.get("status"), float(body.get("sleep_s", 0))
    return {"ok": True}


@app.get("/_calls")
async def calls() -> dict:
    return {"calls": state["calls"]}


@app.post("/v1/chat/completions")
async def chat(request: Request) -> JSONResponse:
    state["calls"] += 1
    body = await request.json()
    if state["sleep_s"]:
        await asyncio.sleep(state["sleep_s"])
    if state["status"] is not None:
        error = {"message": f"stub says {state['status']}", "type": "server_error"}
        return JSONResponse({"error": error}, status_code=state["status"])
    if state["forward"]:
        async with httpx.AsyncClient(timeout=30) as client:
            resp = await client.post(f"{state['forward']}/v1/chat/completions", json=body)
        return JSONResponse(resp.json(), status_code=resp.status_code)
    question = body["messages"][-1]["content"]
    message = {"role": "assistant", "content": f"echo: {question}"}
    usage = {"prompt_tokens": 77, "completion_tokens": 7, "total_tokens": 84}
    reply = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage}
    return JSONResponse(reply)


if __name__ == "__main__":
    state["forward"] = sys.argv[2] if len(sys.argv) > 2 else None
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
