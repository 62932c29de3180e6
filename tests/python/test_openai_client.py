#!/usr/bin/env python3
"""The official `openai` Python SDK as a real client of a running Launch server.

Usage: python3 tests/python/test_openai_client.py http://127.0.0.1:PORT

Environment: LAUNCH_TEST_API_KEY, the server's API key (the server runs with
auth on, so a wrong key can be tested); LAUNCH_TEST_MODEL, the configured model
(default `mock-model`).

The mock LLM behind the server is scripted by tests/tests/python_client.rs
(which runs this script and then checks what the model was sent). It answers
from the request alone:

- last message a tool result R         -> text "The answer is R."
- last user message "compute EXPR"     -> a calculator_evaluate call on EXPR
- last user message "recall"           -> "You said: A | B" (the earlier user
                                          messages it was sent) or "You said: nothing"
- last user message "provider-fail"    -> an HTTP 400 from the provider
- anything else                        -> "ok: TEXT"

Exits 0 when every check passes; otherwise prints the failure and exits 1.
No pytest needed.
"""

import asyncio
import os
import sys
import traceback

try:
    import httpx
    import openai
except ImportError as exc:  # pragma: no cover - depends on the machine
    print(
        f"the `openai` package is not importable ({exc}); "
        "run `pip install -r tests/python/requirements.txt`",
        file=sys.stderr,
    )
    sys.exit(3)

URL = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080"
KEY = os.environ.get("LAUNCH_TEST_API_KEY", "")
MODEL = os.environ.get("LAUNCH_TEST_MODEL", "mock-model")

client = openai.OpenAI(base_url=f"{URL}/v1", api_key=KEY or "none", max_retries=0, timeout=30)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def ask(text, **kw):
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], **kw
    )


def test_models():
    models = client.models.list()
    ids = [m.id for m in models.data]
    check(ids == [MODEL], f"models.list() ids: {ids}")
    check(models.data[0].owned_by == "launch", f"owned_by: {models.data[0]}")


def test_completion_with_tool_step():
    completion = ask("compute 2 * (3 + 4)")
    choice = completion.choices[0]
    check(choice.message.content == "The answer is 14.0.", f"content: {choice.message.content!r}")
    check(choice.finish_reason == "stop", f"finish_reason: {choice.finish_reason!r}")
    # The server ran the tool itself: the client sees no tool calls to run.
    check(not choice.message.tool_calls, f"tool_calls: {choice.message.tool_calls!r}")
    check(completion.object == "chat.completion", completion.object)
    check(completion.model == MODEL, completion.model)
    check(completion.usage is not None and completion.usage.total_tokens > 0, f"usage: {completion.usage}")
    # The extension is not a declared field: pydantic keeps it as an extra.
    check("launch" not in type(completion).model_fields, "the SDK unexpectedly declares `launch`")
    launch = completion.model_extra["launch"]
    steps = launch["steps"]
    check(len(steps) == 1, f"steps: {steps}")
    step = steps[0]
    check(step["name"] == "calculator_evaluate", step)
    check(step["arguments"] == {"expression": "2 * (3 + 4)"}, step)
    check(step["result"] == 14.0, step)
    check(launch["iterations"] == 2, launch)
    check(launch["finish_reason"] == "stop", launch)
    # ...and to_dict()/model_dump() keep it too.
    check(completion.to_dict()["launch"]["steps"] == steps, "to_dict() lost launch.steps")
    check(completion.model_dump()["launch"]["steps"] == steps, "model_dump() lost launch.steps")


def test_stream_with_tool_step():
    stream = ask("compute 6 * 7", stream=True)
    text, launch_types, finishes, chunks = [], [], [], 0
    for chunk in stream:
        chunks += 1
        check(chunk.object == "chat.completion.chunk", chunk)
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        if choice.delta.content:
            text.append(choice.delta.content)
        if choice.finish_reason:
            finishes.append(choice.finish_reason)
        extra = (chunk.model_extra or {}).get("launch")
        if extra is not None:
            launch_types.append(extra["type"])
            # Launch chunks carry an empty standard delta.
            check(choice.delta.content is None and not choice.delta.tool_calls, f"launch chunk delta: {choice.delta}")
            if extra["type"] == "tool_finished":
                check(extra["name"] == "calculator_evaluate" and extra["result"] == 42.0, extra)
    answer = "".join(text)
    check(answer == "The answer is 42.0.", f"streamed answer: {answer!r}")
    check(launch_types == ["tool_started", "tool_finished", "done"], f"launch chunk types: {launch_types}")
    check(finishes == ["stop"], f"finish reasons: {finishes}")
    check(chunks > 4, f"only {chunks} chunks")


def test_stream_helper_accumulates():
    """The SDK's higher-level `chat.completions.stream()` helper accumulates the
    chunks (launch ones included) into a final ChatCompletion."""
    with client.chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "compute 1 + 1"}]
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    check("".join(deltas) == "The answer is 2.0.", f"helper deltas: {deltas}")
    check(final.choices[0].message.content == "The answer is 2.0.", f"helper final: {final}")


def test_async_stream():
    async def run():
        async with openai.AsyncOpenAI(base_url=f"{URL}/v1", api_key=KEY, max_retries=0) as aclient:
            stream = await aclient.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "compute 10 / 4"}], stream=True
            )
            parts = []
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
            return "".join(parts)

    answer = asyncio.run(run())
    check(answer == "The answer is 2.5.", f"async streamed answer: {answer!r}")


def create_session(title):
    r = httpx.post(
        f"{URL}/v1/sessions",
        json={"title": title},
        headers={"authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    check(r.status_code == 201, f"POST /v1/sessions: {r.status_code} {r.text}")
    return r.json()["id"]


def test_session_across_turns():
    sid = create_session("python")
    headers = {"x-session-id": sid}
    first = ask("My name is Ada.", extra_headers=headers)
    check(first.choices[0].message.content == "ok: My name is Ada.", first.choices[0].message.content)
    second = ask("recall", extra_headers=headers)
    check(second.choices[0].message.content == "You said: My name is Ada.",
          f"second turn: {second.choices[0].message.content!r}")
    # A streamed turn in the same session sees both earlier turns.
    stream = ask("recall", extra_headers=headers, stream=True)
    answer = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    check(answer == "You said: My name is Ada. | recall", f"streamed third turn: {answer!r}")
    detail = httpx.get(f"{URL}/v1/sessions/{sid}", headers={"authorization": f"Bearer {KEY}"}).json()
    check(detail["message_count"] == 6, f"session detail: {detail}")
    # Without the header the same question is stateless.
    alone = ask("recall")
    check(alone.choices[0].message.content == "You said: nothing", alone.choices[0].message.content)


def expect(exc_type, fn, status):
    try:
        fn()
    except exc_type as e:
        check(e.status_code == status, f"{exc_type.__name__}: status {e.status_code}")
        # OpenAI error bodies: the SDK unwraps {"error": {...}}.
        check(isinstance(e.body, dict) and "message" in e.body and "type" in e.body, f"body: {e.body!r}")
        return e
    raise AssertionError(f"expected {exc_type.__name__}")


def test_errors():
    e = expect(openai.NotFoundError, lambda: ask("hi", extra_headers={"x-session-id": "no-such-session"}), 404)
    check("no session" in e.message, e.message)
    e = expect(openai.BadRequestError,
               lambda: client.chat.completions.create(model=MODEL, messages=[]), 400)
    check(e.param == "messages", f"param: {e.param!r}")
    e = expect(openai.UnprocessableEntityError,
               lambda: client.chat.completions.create(model=MODEL, messages="hi"), 422)
    wrong = openai.OpenAI(base_url=f"{URL}/v1", api_key="wrong-key-0123456789", max_retries=0)
    e = expect(openai.AuthenticationError, lambda: wrong.models.list(), 401)
    expect(openai.AuthenticationError,
           lambda: wrong.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}]), 401)
    # The provider fails: a 502 for a plain request...
    e = expect(openai.InternalServerError, lambda: ask("provider-fail"), 502)
    # ...and an `error` event inside a stream that already started, which the
    # SDK raises as a plain APIError while iterating.
    try:
        for _ in ask("provider-fail", stream=True):
            pass
    except openai.APIStatusError as exc:  # not expected: the stream starts with 200
        raise AssertionError(f"stream error surfaced as a status error: {exc}") from exc
    except openai.APIError as exc:
        check("mock LLM refuses" in str(exc) or "provider" in str(exc), f"stream error: {exc}")
    else:
        raise AssertionError("a failing provider mid-stream raised nothing")


def test_stream_unknown_session():
    """An unknown session with `stream: true` is a 404 before the stream
    starts, so the SDK raises openai.NotFoundError as without streaming."""
    try:
        for _ in ask("hi", stream=True, extra_headers={"x-session-id": "no-such-session"}):
            pass
    except openai.NotFoundError as e:
        check("no session" in e.message, e.message)
        return
    raise AssertionError("an unknown session in a stream did not raise openai.NotFoundError")


TESTS = [
    test_models,
    test_completion_with_tool_step,
    test_stream_with_tool_step,
    test_stream_helper_accumulates,
    test_async_stream,
    test_session_across_turns,
    test_errors,
    test_stream_unknown_session,
]


def main():
    print(f"openai {openai.__version__}, httpx {httpx.__version__}, Python {sys.version.split()[0]}")
    failed = 0
    for test in TESTS:
        try:
            test()
            print(f"ok   {test.__name__}")
        except Exception:  # noqa: BLE001 - report every failure, then exit 1
            failed += 1
            print(f"FAIL {test.__name__}")
            traceback.print_exc()
    print(f"{len(TESTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
