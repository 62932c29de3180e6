#!/usr/bin/env python3
"""The official MCP Python SDK (`mcp`) as a real client of Launch's MCP server.

Usage:
  python3 tests/python/test_mcp_client.py http URL            # Streamable HTTP at URL/mcp
  python3 tests/python/test_mcp_client.py stdio LAUNCH PLUGINS DATA
                                                             # spawns `LAUNCH mcp --stdio`
  python3 tests/python/test_mcp_client.py bench URL N         # N calculator calls, prints p50/p99

Environment: LAUNCH_TEST_API_KEY, the server's API key when auth is on (the
script then also checks that a client without it, or with a wrong one, is
refused); LAUNCH_TEST_WORKSPACE, when set, the host folder the `files` plugin
is granted (the script writes and reads a file there); LAUNCH_TEST_TOOLS,
comma-separated tools the server must list (default: calculator, clock and
text ones).

Run by tests/tests/mcp.rs, which starts the server. Exits 0 when every check
passes; otherwise prints the failure and exits 1. No pytest needed.
"""

import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import traceback

try:
    import httpx2
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError
except ImportError as exc:  # pragma: no cover - depends on the machine
    print(
        f"the `mcp` package is not importable ({exc}); "
        "run `pip install -r tests/python/requirements.txt`",
        file=sys.stderr,
    )
    sys.exit(3)

KEY = os.environ.get("LAUNCH_TEST_API_KEY", "")
WORKSPACE = os.environ.get("LAUNCH_TEST_WORKSPACE", "")
EXPECTED = [
    t
    for t in os.environ.get(
        "LAUNCH_TEST_TOOLS",
        "calculator_evaluate,clock_now,clock_convert,text_slugify,text_stats,text_split",
    ).split(",")
    if t
]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def text_of(result):
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def http_client(key):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx2.AsyncClient(headers=headers, timeout=30)


@contextlib.asynccontextmanager
async def http_session(url, key):
    """An initialized ClientSession over Streamable HTTP, and its InitializeResult."""
    async with http_client(key) as client:
        async with streamable_http_client(f"{url}/mcp", http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                yield session, init


async def exercise(session, init):
    """Every check that does not depend on the transport."""
    check(init.server_info.name == "launch", f"serverInfo: {init.server_info}")
    check(init.capabilities.tools is not None, "tools capability advertised")

    listed = await session.list_tools()
    tools = {t.name: t for t in listed.tools}
    print(f"tools/list: {sorted(tools)}")
    for name in EXPECTED:
        check(name in tools, f"{name} listed")
    calc = tools["calculator_evaluate"]
    check(calc.description and "expression" in json.dumps(calc.input_schema), "calculator described")
    check(calc.input_schema.get("type") == "object", "input schema is an object schema")
    check(calc.input_schema.get("required") == ["expression"], f"required: {calc.input_schema}")
    # A number result has no object schema, so no outputSchema; an object result has one.
    check(calc.output_schema is None, "calculator has no outputSchema (its result is a number)")
    check(tools["clock_now"].output_schema["type"] == "object", "clock_now has an outputSchema")
    check("iso8601" in tools["clock_now"].output_schema["properties"], "clock_now outputSchema")

    # calculator: text content, no structured content.
    r = await session.call_tool("calculator_evaluate", {"expression": "2 * (3 + 4)"})
    check(not r.is_error, f"calculator ok: {r}")
    check(float(text_of(r)) == 14.0, f"2 * (3 + 4) = {text_of(r)}")

    # clock: structured content matching its outputSchema, and the same as text.
    r = await session.call_tool("clock_now", {"time-zone": "Asia/Tokyo"})
    check(not r.is_error, f"clock_now ok: {r}")
    check(r.structured_content and "+09:00" in r.structured_content["iso8601"], f"clock_now: {r}")
    check(json.loads(text_of(r)) == r.structured_content, "text content mirrors structured content")
    r = await session.call_tool(
        "clock_convert", {"timestamp": "2024-03-10T14:30:00Z", "to-zone": "Europe/Paris"}
    )
    check(not r.is_error and r.structured_content["iso8601"].startswith("2024-03-10T15:30:00"), f"{r}")

    # text: a string result as plain text; an object result as structured content.
    r = await session.call_tool("text_slugify", {"text": "Hello, MCP World!"})
    check(not r.is_error and text_of(r) == "hello-mcp-world", f"slugify: {r}")
    r = await session.call_tool("text_stats", {"text": "one two three"})
    check(not r.is_error and r.structured_content["words"] == 3, f"stats: {r}")
    r = await session.call_tool("text_split", {"text": "a b  c", "by": "whitespace"})
    check(not r.is_error and json.loads(text_of(r)) == ["a", "b", "c"], f"split: {r}")

    # Tool errors are results with isError and a clear message.
    r = await session.call_tool("calculator_evaluate", {})
    check(r.is_error, "missing argument is a tool error")
    check("invalid_arguments" in text_of(r) and "expression" in text_of(r), f"names the field: {text_of(r)}")
    r = await session.call_tool("calculator_evaluate", {"expression": 42})
    check(r.is_error and "invalid_arguments" in text_of(r), f"wrong type: {text_of(r)}")
    r = await session.call_tool("calculator_evaluate", {"expression": "1 +"})
    check(r.is_error and text_of(r).startswith("tool_error:"), f"the plugin's own error: {text_of(r)}")

    # An unknown tool is a protocol error naming the tools there are.
    try:
        await session.call_tool("no_such_tool", {})
        raise AssertionError("unknown tool accepted")
    except MCPError as e:
        check("no_such_tool" in str(e) and "calculator_evaluate" in str(e), f"unknown tool: {e}")

    if "http_fetch_fetch" in tools:
        # Capability error: the host is not in the plugin's allowlist.
        r = await session.call_tool("http_fetch_fetch", {"url": "http://127.0.0.1:9/secret"})
        check(r.is_error, f"ungranted host refused: {r}")
        print(f"http_fetch to an ungranted host: {text_of(r)}")
        check("127.0.0.1" in text_of(r), f"names the host: {text_of(r)}")

    if WORKSPACE:
        r = await session.call_tool("files_write_file", {"path": "mcp/note.txt", "content": "via MCP", "mode": "overwrite"})
        check(not r.is_error, f"write: {text_of(r)}")
        with open(os.path.join(WORKSPACE, "mcp", "note.txt")) as f:
            check(f.read() == "via MCP", "written on the host")
        r = await session.call_tool("files_read_file", {"path": "mcp/note.txt"})
        check(not r.is_error and r.structured_content["content"] == "via MCP", f"read: {r}")
        r = await session.call_tool("files_read_file", {"path": "../../etc/passwd"})
        check(r.is_error, f"escaping the workspace is refused: {text_of(r)}")
        print(f"files outside the workspace: {text_of(r)}")
    return sorted(tools)


async def refused(url, key):
    """A client with `key` (empty: none) cannot even initialize."""
    try:
        async with http_session(url, key):
            return False
    except Exception as e:  # noqa: BLE001 - the SDK wraps HTTP errors in exception groups
        print(f"refused as expected: {type(e).__name__}")
        return True


async def run_http(url):
    async with http_session(url, KEY) as (session, init):
        names = await exercise(session, init)
    if KEY:
        # Without the key (and with a wrong one) the server answers 401 and the SDK fails.
        async with httpx2.AsyncClient(timeout=10) as raw:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
            headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
            r = await raw.post(f"{url}/mcp", json=body, headers=headers)
            check(r.status_code == 401, f"no key: {r.status_code} {r.text}")
            r = await raw.post(
                f"{url}/mcp", json=body, headers={**headers, "Authorization": "Bearer wrong-key"}
            )
            check(r.status_code == 401, f"wrong key: {r.status_code} {r.text}")
        check(await refused(url, ""), "the SDK without a key is refused")
        check(await refused(url, "wrong-key"), "the SDK with a wrong key is refused")
        print("auth: refused without the key and with a wrong one")
    print(f"http ok: {len(names)} tools")


async def run_stdio(launch, plugins, data):
    params = StdioServerParameters(
        command=launch,
        args=["mcp", "--stdio", "--plugins", plugins, "--data-dir", data],
        env={"NO_COLOR": "1"},
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            names = await exercise(session, init)
    print(f"stdio ok: {len(names)} tools")


async def run_bench(url, n):
    async with http_session(url, KEY) as (session, _init):
        for _ in range(50):  # warm up: compile cache, connection, instance pool
            await session.call_tool("calculator_evaluate", {"expression": "1 + 1"})
        samples = []
        started = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            r = await session.call_tool("calculator_evaluate", {"expression": f"{i} * 2 + 1"})
            samples.append(time.perf_counter() - t)
            check(not r.is_error, "bench call ok")
        total = time.perf_counter() - started
    samples.sort()
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1000  # noqa: E731
    print(
        json.dumps(
            {
                "calls": n,
                "calls_per_second": round(n / total, 1),
                "p50_ms": round(p(0.50), 3),
                "p99_ms": round(p(0.99), 3),
                "mean_ms": round(statistics.mean(samples) * 1000, 3),
            }
        )
    )


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        if mode == "http":
            asyncio.run(run_http(sys.argv[2].rstrip("/")))
        elif mode == "stdio":
            asyncio.run(run_stdio(sys.argv[2], sys.argv[3], sys.argv[4]))
        elif mode == "bench":
            asyncio.run(run_bench(sys.argv[2].rstrip("/"), int(sys.argv[3])))
        else:
            print(__doc__, file=sys.stderr)
            sys.exit(2)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
